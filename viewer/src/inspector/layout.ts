import type { MachineNode } from '@doorbell/core'
import type { MachineTransition } from '@doorbell/machines'
import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api'

/**
 * A statechart laid out by ELK (elkjs, the Eclipse Layout Kernel compiled to JavaScript): states
 * as nested boxes, parallel regions side by side, every transition between two states an
 * orthogonal arrow with its label placed by the layout. ELK is chosen over dagre because it lays
 * out compound graphs with edges that cross their boundaries (a child's transition to its parent's
 * sibling), which statecharts are full of. A transition that does not leave its state is drawn as
 * a loop row inside the state's box, where its label can be read.
 */
export interface LaidState {
  path: string
  key: string
  type: MachineNode['type']
  initial: boolean
  x: number
  y: number
  width: number
  height: number
  /** Transitions that stay in this state (no target, or itself as target), drawn as loop rows. */
  loops: MachineTransition[]
}

export interface LaidEdge {
  transition: MachineTransition
  /** Polyline points from the source's border to the target's (the last one gets the arrowhead). */
  points: Array<{ x: number, y: number }>
  label: { x: number, y: number, width: number, height: number, text: string }
}

export interface ChartLayout {
  width: number
  height: number
  states: LaidState[]
  edges: LaidEdge[]
}

const CHAR = 6.2
const LINE = 14
const HEADER = 20
const PAD = 10

export const transitionText = (t: MachineTransition): string =>
  `${t.label}${t.guard !== null ? ` [${t.guard}]` : ''}`

const textWidth = (text: string): number => Math.ceil(text.length * CHAR) + 8

const isLoop = (t: MachineTransition): boolean => t.internal || t.source === t.target

/** The ELK graph of a machine: one ELK node per state (the root included), one edge per arrow. */
export function elkGraph (root: MachineNode, transitions: MachineTransition[]): ElkNode {
  const loops = (path: string): MachineTransition[] => transitions.filter((t) => t.source === path && isLoop(t))
  const node = (n: MachineNode): ElkNode => {
    const own = loops(n.path)
    const header = HEADER + own.length * LINE
    const width = Math.max(textWidth(n.key || '(root)') + 10, ...own.map((t) => textWidth(transitionText(t)) + 30))
    const children = n.states.map((c) => node(c))
    return {
      id: `s:${n.path}`,
      ...(children.length === 0 ? { width, height: header + 6 } : {}),
      layoutOptions: {
        'elk.padding': `[top=${header + 6},left=${PAD},bottom=${PAD},right=${PAD}]`,
        'elk.nodeSize.minimum': `(${width},${header + 6})`,
        'elk.nodeSize.constraints': 'MINIMUM_SIZE',
        // Regions of a parallel state (unconnected, so one layer) stand side by side, as statecharts draw them.
        ...(n.type === 'parallel' ? { 'elk.direction': 'DOWN' } : {})
      },
      children
    }
  }
  const edges: ElkExtendedEdge[] = transitions.filter((t) => !isLoop(t)).map((t) => {
    const text = transitionText(t)
    return { id: `e:${t.id}`, sources: [`s:${t.source}`], targets: [`s:${t.target}`], labels: [{ text, width: textWidth(text), height: LINE }] }
  })
  return {
    id: 'graph',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.edgeLabels.inline': 'false',
      'elk.layered.spacing.nodeNodeBetweenLayers': '40',
      'elk.spacing.nodeNode': '24',
      'elk.spacing.edgeLabel': '2',
      'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
      'elk.json.shapeCoords': 'ROOT',
      'elk.json.edgeCoords': 'ROOT'
    },
    children: [node(root)],
    edges
  }
}

type Elk = { layout: (graph: ElkNode) => Promise<ElkNode> }
let elk: Promise<Elk> | null = null
/** ELK is loaded with the first chart (its own chunk): the residents' pages never fetch it. */
const loadElk = async (): Promise<Elk> => {
  elk ??= import('elkjs/lib/elk.bundled.js').then((m) => {
    const ELK = (m as unknown as { default: new () => Elk }).default
    return new ELK()
  })
  return await elk
}

/** Lays out one machine's statechart; coordinates are absolute (ELK's root coordinates). */
export async function layoutChart (root: MachineNode, transitions: MachineTransition[], engine?: Elk): Promise<ChartLayout> {
  const laid = await (engine ?? await loadElk()).layout(elkGraph(root, transitions))
  const byPath = new Map<string, MachineNode>()
  const index = (n: MachineNode): void => { byPath.set(n.path, n); n.states.forEach(index) }
  index(root)
  const initials = new Set<string>()
  for (const n of byPath.values()) if (n.initial !== null) initials.add(n.path === '' ? n.initial : `${n.path}.${n.initial}`)
  const states: LaidState[] = []
  const collect = (e: ElkNode): void => {
    const path = e.id.slice(2)
    const n = byPath.get(path)
    if (n) {
      states.push({
        path,
        key: n.key,
        type: n.type,
        initial: initials.has(path),
        x: e.x ?? 0,
        y: e.y ?? 0,
        width: e.width ?? 0,
        height: e.height ?? 0,
        loops: transitions.filter((t) => t.source === path && isLoop(t))
      })
    }
    e.children?.forEach(collect)
  }
  laid.children?.forEach(collect)
  const byId = new Map(transitions.map((t) => [`e:${t.id}`, t]))
  const edges: LaidEdge[] = []
  const gather = (e: ElkNode): void => {
    for (const edge of e.edges ?? []) {
      const t = byId.get(edge.id)
      const section = edge.sections?.[0]
      const label = edge.labels?.[0]
      if (!t || !section) continue
      edges.push({
        transition: t,
        points: [section.startPoint, ...(section.bendPoints ?? []), section.endPoint],
        label: { x: label?.x ?? section.startPoint.x, y: label?.y ?? section.startPoint.y, width: label?.width ?? 0, height: label?.height ?? LINE, text: label?.text ?? transitionText(t) }
      })
    }
    e.children?.forEach(gather)
  }
  gather(laid)
  return { width: laid.width ?? 0, height: laid.height ?? 0, states, edges }
}
