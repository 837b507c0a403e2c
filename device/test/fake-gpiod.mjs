// Fake gpiod tools (gpiodetect, gpioinfo, gpioset, gpiomon) for the driver tests: one program
// that emulates the command lines, the output and the error messages of libgpiod's own tools,
// v1 (1.6, Bookworm) or v2 (2.2, Trixie), as read from their sources, on an emulated chip kept
// in files (see fakeGpiod.ts). It is not the hardware's behaviour that is emulated, only the
// tools' contract: what they accept, print, hold and refuse.
//
//   node fake-gpiod.mjs <major> <release> <stateDir> <argv0> [args...]
//
// State (in stateDir): chips.json [{ name, label, lines }]; denied-<chip> (the chip cannot be
// opened: EACCES); <chip>-<offset>.holder (who has the line requested, like the kernel's
// request: free again when that pid is gone); <chip>-<offset>.value (the level an output is
// driven to, kept after the requester dies); <chip>-<offset>.input (the levels a test puts on an
// input, one per line, appended); log.jsonl (every invocation and every value driven).
import fs from 'node:fs'
import { basename, join } from 'node:path'

const [, , major, release, stateDir, argv0, ...args] = process.argv
const v2 = major === '2'
const tool = basename(argv0)
const ERR = { EACCES: 'Permission denied', EBUSY: 'Device or resource busy', ENOENT: 'No such file or directory', EINVAL: 'Invalid argument' }

const chips = JSON.parse(fs.readFileSync(join(stateDir, 'chips.json'), 'utf8'))
const logEvent = (event) => { fs.appendFileSync(join(stateDir, 'log.jsonl'), JSON.stringify({ tool, pid: process.pid, ...event }) + '\n') }
logEvent({ args })

function die (message) {
  process.stderr.write(`${argv0}: ${message}\n`)
  process.exit(1)
}
const notEmulated = (what) => { process.stderr.write(`fake ${tool}: ${what} is not emulated\n`); process.exit(99) }

/** getopt_long, enough of it: clustered short flags, -xVAL / -x VAL, --long=VAL / --long VAL, "+" (stop at the first operand). */
function getopt (shortopts, longopts) {
  const opts = []
  const rest = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (a === '--') { rest.push(...args.slice(i + 1)); break }
    if (a.startsWith('--')) {
      const [name, inline] = a.slice(2).split(/=(.*)/s)
      const spec = longopts[name]
      if (spec === undefined) die(`unrecognized option '--${name}'\n${argv0}: try ${argv0} --help`)
      if (spec.arg) opts.push([spec.key, inline !== undefined ? inline : args[++i]])
      else opts.push([spec.key, true])
      continue
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j]
        const at = shortopts.indexOf(c)
        if (at < 0 || c === ':' || c === '+') die(`invalid option -- '${c}'\n${argv0}: try ${argv0} --help`)
        if (shortopts[at + 1] === ':') {
          opts.push([c, j + 1 < a.length ? a.slice(j + 1) : args[++i]])
          break
        }
        opts.push([c, true])
      }
      continue
    }
    rest.push(...args.slice(i)) // "+": options end at the first operand
    break
  }
  return { opts, rest }
}

function printVersion () {
  console.log(`${tool} (libgpiod) v${release}`)
  console.log(v2 ? 'Copyright (C) 2017-2023 Bartosz Golaszewski' : 'Copyright (C) 2017-2018 Bartosz Golaszewski')
  console.log(v2 ? 'License: GPL-2.0-or-later' : 'License: LGPLv2.1')
  console.log('This is free software: you are free to change and redistribute it.')
  console.log('There is NO WARRANTY, to the extent permitted by law.')
  process.exit(0)
}

const denied = (chip) => fs.existsSync(join(stateDir, `denied-${chip.name}`))
/** v1's gpiod_chip_open_lookup: a name, a number, a path or a label. */
const lookupV1 = (id) => chips.find((c) => c.name === id || `gpiochip${id}` === c.name || `/dev/${c.name}` === id || c.label === id)
/** v2's chip_path_lookup: a number, a name or a path (not a label). */
const lookupV2 = (id) => chips.find((c) => `gpiochip${id}` === c.name || c.name === id || `/dev/${c.name}` === id)

const holderPath = (chip, offset) => join(stateDir, `${chip.name}-${offset}.holder`)
/** A requester that exited has released its lines, even while it is a zombie not yet reaped. */
const alive = (pid) => {
  try { return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')) } catch { return false }
}
const held = []

/** The kernel's line request: one requester per line; a dead requester's lines are free again. */
function request (chip, offset, info) {
  const path = holderPath(chip, offset)
  for (;;) {
    try {
      fs.writeFileSync(path, JSON.stringify({ pid: process.pid, ...info }), { flag: 'wx' })
      held.push(path)
      return null
    } catch (err) {
      if (err.code !== 'EEXIST') throw err
      let holder = {}
      try { holder = JSON.parse(fs.readFileSync(path, 'utf8')) } catch {}
      if (holder.pid !== undefined && alive(holder.pid)) return 'EBUSY'
      fs.rmSync(path, { force: true })
    }
  }
}
process.on('exit', () => {
  for (const path of held) {
    try { if (JSON.parse(fs.readFileSync(path, 'utf8')).pid === process.pid) fs.rmSync(path) } catch {}
  }
})
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => { process.exit(0) })

const drive = (chip, offset, level) => {
  fs.writeFileSync(join(stateDir, `${chip.name}-${offset}.value`), `${level}\n`)
  logEvent({ set: { chip: chip.name, offset, level } })
}
const holdForever = () => { setInterval(() => {}, 1 << 30) }
const rpad = (s, n) => s.length >= n ? s : ' '.repeat(n - s.length) + s

// ---------------------------------------------------------------------------------- gpiodetect
function gpiodetect () {
  const { opts, rest } = getopt('+hv', { help: { key: 'h' }, version: { key: 'v' } })
  for (const [k] of opts) { if (k === 'v') printVersion(); if (k === 'h') notEmulated('--help') }
  if (rest.length > 0) notEmulated('naming chips')
  if (!v2) {
    // 1.6: the chip iterator opens every chip first and gives up on the first it cannot open.
    if (chips.some(denied)) die(`unable to access GPIO chips: ${ERR.EACCES}`)
    for (const c of chips) console.log(`${c.name} [${c.label}] (${c.lines} lines)`)
    process.exit(0)
  }
  let status = 0
  for (const c of chips) {
    if (denied(c)) { process.stderr.write(`${argv0}: unable to open chip '/dev/${c.name}': ${ERR.EACCES}\n`); status = 1; continue }
    console.log(`${c.name} [${c.label}] (${c.lines} lines)`)
  }
  process.exit(status)
}

// ---------------------------------------------------------------------------------- gpioinfo
function gpioinfo () {
  const { opts, rest } = getopt(v2 ? '+c:hsv' : '+hv', v2 ? { chip: { key: 'c', arg: true }, help: { key: 'h' }, version: { key: 'v' } } : { help: { key: 'h' }, version: { key: 'v' } })
  for (const [k] of opts) { if (k === 'v') printVersion(); if (k === 'h') notEmulated('--help') }
  if (v2) notEmulated('gpioinfo v2 (the driver does not use it)')
  const list = rest.length === 0 ? chips : rest.map((id) => lookupV1(id) ?? die(`looking up chip ${id}: ${ERR.ENOENT}`))
  for (const chip of list) {
    if (denied(chip)) die(`looking up chip ${chip.name}: ${ERR.EACCES}`)
    console.log(`${chip.name} - ${chip.lines} lines:`)
    for (let offset = 0; offset < chip.lines; offset++) {
      let holder = null
      try { holder = JSON.parse(fs.readFileSync(holderPath(chip, offset), 'utf8')) } catch {}
      if (holder && !alive(holder.pid)) holder = null
      const flags = [holder ? 'used' : null, holder?.bias === 'pull-up' ? 'pull-up' : null, holder?.bias === 'pull-down' ? 'pull-down' : null].filter(Boolean)
      console.log(`\tline ${rpad(String(offset), 3)}: ${rpad('unnamed', 12)} ${rpad(holder ? `"${holder.consumer}"` : 'unused', 12)} ${rpad(`${holder?.direction ?? 'input'} `, 8)}${rpad(`${holder?.activeLow ? 'active-low' : 'active-high'} `, 13)}${flags.length ? `[${flags.join(' ')}]` : ''}`)
    }
  }
  process.exit(0)
}

// ---------------------------------------------------------------------------------- gpioset
function parseValue (text) {
  if (!v2) return text === '0' ? 0 : text === '1' ? 1 : null
  return ({ 0: 0, 1: 1, inactive: 0, active: 1, off: 0, on: 1, false: 0, true: 1 })[text] ?? null
}

function gpioset () {
  if (!v2) {
    const { opts, rest } = getopt('+hvlB:D:m:s:u:b', { help: { key: 'h' }, version: { key: 'v' }, 'active-low': { key: 'l' }, bias: { key: 'B', arg: true }, drive: { key: 'D', arg: true }, mode: { key: 'm', arg: true }, sec: { key: 's', arg: true }, usec: { key: 'u', arg: true }, background: { key: 'b' } })
    let mode = 'exit'
    let activeLow = false
    let bias = 'as-is'
    for (const [k, v] of opts) {
      if (k === 'v') printVersion()
      if (k === 'h') notEmulated('--help')
      if (k === 'l') activeLow = true
      if (k === 'B') { if (!['as-is', 'disable', 'pull-down', 'pull-up'].includes(v)) die(`invalid bias: ${v}`); bias = v }
      if (k === 'm') { if (!['exit', 'wait', 'time', 'signal'].includes(v)) die(`invalid mode: ${v}`); mode = v }
      if (k === 'b' || k === 's' || k === 'u' || k === 'D') notEmulated(`-${k}`)
    }
    if (rest.length < 1) die('gpiochip must be specified')
    if (rest.length < 2) die('at least one GPIO line offset to value mapping must be specified')
    const pairs = rest.slice(1).map((pair) => {
      const m = /^(.*)=(.*)$/.exec(pair)
      if (!m) die(`invalid offset<->value mapping: ${pair}`)
      const value = parseValue(m[2])
      if (value === null) die(`value must be 0 or 1: ${pair}`)
      if (!/^\d+$/.test(m[1])) die(`invalid offset: ${pair}`)
      return [Number(m[1]), value]
    })
    const failSet = (code) => die(`error setting the GPIO line values: ${ERR[code]}`)
    const chip = lookupV1(rest[0])
    if (!chip) failSet('ENOENT')
    if (denied(chip)) failSet('EACCES')
    for (const [offset] of pairs) if (offset >= chip.lines) failSet('EINVAL')
    for (const [offset] of pairs) if (request(chip, offset, { consumer: 'gpioset', direction: 'output', bias, activeLow })) failSet('EBUSY')
    for (const [offset, value] of pairs) drive(chip, offset, activeLow ? 1 - value : value)
    if (mode === 'exit') process.exit(0)
    if (mode === 'time') notEmulated('--mode=time')
    if (mode === 'wait') { process.stdin.once('data', () => process.exit(0)); process.stdin.once('end', () => process.exit(0)); return }
    holdForever() // signal: until SIGTERM or SIGINT
    return
  }
  const { opts, rest } = getopt('+b:c:C:d:hlp:st:vz', { 'active-low': { key: 'l' }, banner: { key: '-' }, bias: { key: 'b', arg: true }, 'by-name': { key: 'B' }, chip: { key: 'c', arg: true }, consumer: { key: 'C', arg: true }, daemonize: { key: 'z' }, drive: { key: 'd', arg: true }, help: { key: 'h' }, 'hold-period': { key: 'p', arg: true }, strict: { key: 's' }, toggle: { key: 't', arg: true }, unquoted: { key: 'Q' }, version: { key: 'v' } })
  let chipId = null
  let consumer = 'gpioset'
  let banner = false
  let activeLow = false
  let bias = 'as-is'
  for (const [k, v] of opts) {
    if (k === 'v') printVersion()
    if (k === 'h') notEmulated('--help')
    if (k === 'c') chipId = v
    if (k === 'C') consumer = v
    if (k === '-') banner = true
    if (k === 'l') activeLow = true
    if (k === 'b') { if (!['pull-up', 'pull-down', 'disabled'].includes(v)) die(`invalid bias: ${v}`); bias = v }
    if (['z', 't', 'p', 'd', 'B'].includes(k)) notEmulated(`option ${k}`)
  }
  if (rest.length < 1) die('at least one GPIO line value must be specified')
  const pairs = rest.map((pair) => {
    const at = pair.indexOf('=')
    if (at < 0) die(`invalid line value: '${pair}'`)
    const value = parseValue(pair.slice(at + 1))
    if (value === null) die(`invalid line value: '${pair.slice(at + 1)}'`)
    return [pair.slice(0, at), value]
  })
  if (chipId === null) notEmulated('lines by name (no -c)')
  const chip = lookupV2(chipId)
  if (!chip) die(`cannot find GPIO chip character device '${chipId}'`)
  if (denied(chip)) die(`unable to open chip '/dev/${chip.name}': ${ERR.EACCES}`)
  let bad = false
  for (const [id] of pairs) {
    if (!/^\d+$/.test(id)) { process.stderr.write(`${argv0}: cannot find line '${id}'\n`); bad = true } else if (Number(id) >= chip.lines) { process.stderr.write(`${argv0}: offset ${id} is out of range on chip '${chipId}'\n`); bad = true }
  }
  if (bad) process.exit(1)
  for (const [id] of pairs) {
    if (request(chip, Number(id), { consumer, direction: 'output', bias, activeLow })) die(`unable to request lines on chip '/dev/${chip.name}': ${ERR.EBUSY}`)
  }
  for (const [id, value] of pairs) drive(chip, Number(id), activeLow ? 1 - value : value)
  if (banner) process.stdout.write(pairs.length > 1 ? `Setting lines ${pairs.slice(0, -1).map(([id]) => `'${id}'`).join(', ')} and '${pairs.at(-1)[0]}'...\n` : `Setting line '${pairs[0][0]}'...\n`)
  holdForever() // v2 keeps the lines until it is killed
}

// ---------------------------------------------------------------------------------- gpiomon
/** The levels a test puts on an input line, read as they are appended. */
function watchInput (chip, offset, initial, onLevel) {
  const path = join(stateDir, `${chip.name}-${offset}.input`)
  let at = 0
  try { at = fs.statSync(path).size } catch {}
  let level = initial
  let partial = ''
  setInterval(() => {
    let size = 0
    try { size = fs.statSync(path).size } catch { return }
    if (size <= at) return
    const buf = Buffer.alloc(size - at)
    const fd = fs.openSync(path, 'r')
    fs.readSync(fd, buf, 0, buf.length, at)
    fs.closeSync(fd)
    at = size
    const lines = (partial + buf.toString('utf8')).split('\n')
    partial = lines.pop()
    for (const l of lines) {
      const next = l.trim() === '1' ? 1 : 0
      if (next !== level) { level = next; onLevel(level) }
    }
  }, 3)
}

function gpiomon () {
  const spec = v2
    ? { short: '+b:c:C:e:E:hF:ln:p:qshv', long: { 'active-low': { key: 'l' }, banner: { key: '-' }, bias: { key: 'b', arg: true }, 'by-name': { key: 'B' }, chip: { key: 'c', arg: true }, consumer: { key: 'C', arg: true }, 'debounce-period': { key: 'p', arg: true }, edges: { key: 'e', arg: true }, 'event-clock': { key: 'E', arg: true }, format: { key: 'F', arg: true }, help: { key: 'h' }, 'idle-timeout': { key: 'i', arg: true }, 'num-events': { key: 'n', arg: true }, quiet: { key: 'q' }, silent: { key: 'q' }, strict: { key: 's' }, unquoted: { key: 'Q' }, version: { key: 'v' } } }
    : { short: '+hvlB:n:srfbF:', long: { help: { key: 'h' }, version: { key: 'v' }, 'active-low': { key: 'l' }, bias: { key: 'B', arg: true }, 'num-events': { key: 'n', arg: true }, silent: { key: 's' }, 'rising-edge': { key: 'r' }, 'falling-edge': { key: 'f' }, 'line-buffered': { key: 'b' }, format: { key: 'F', arg: true } } }
  const { opts, rest } = getopt(spec.short, spec.long)
  let activeLow = false
  let bias = 'as-is'
  let edges = 'both'
  let format = null
  let wanted = 0
  let quiet = false
  let lineBuffered = v2 // v2 flushes before every poll
  let banner = false
  let debounceUs = 0
  let chipId = null
  let consumer = 'gpiomon'
  let rising = false
  let falling = false
  for (const [k, v] of opts) {
    if (k === 'v') printVersion()
    if (k === 'h') notEmulated('--help')
    if (k === 'l') activeLow = true
    if (k === 'F') format = v
    if (k === 'n') wanted = Number(v)
    if (!v2) {
      if (k === 'B') { if (!['as-is', 'disable', 'pull-down', 'pull-up'].includes(v)) die(`invalid bias: ${v}`); bias = v }
      if (k === 'r') rising = true
      if (k === 'f') falling = true
      if (k === 'b') lineBuffered = true
      if (k === 's') quiet = true
    } else {
      if (k === 'b') { if (!['pull-up', 'pull-down', 'disabled'].includes(v)) die(`invalid bias: ${v}`); bias = v }
      if (k === 'e') { if (!['rising', 'falling', 'both'].includes(v)) die(`invalid edges: ${v}`); edges = v }
      if (k === 'q') quiet = true
      if (k === '-') banner = true
      if (k === 'c') chipId = v
      if (k === 'C') consumer = v
      if (k === 'p') {
        const m = /^(\d+)(us|ms|s)?$/.exec(v)
        if (!m) die(`invalid period: ${v}`)
        debounceUs = Number(m[1]) * ({ us: 1, ms: 1000, s: 1000000 }[m[2] ?? 'ms'])
      }
      if (['E', 'i', 'B', 's'].includes(k)) notEmulated(`option ${k}`)
    }
  }
  if (!v2) edges = rising && !falling ? 'rising' : falling && !rising ? 'falling' : 'both'

  let chip
  let offsets
  if (!v2) {
    if (rest.length < 1) die('gpiochip must be specified')
    if (rest.length < 2) die('at least one GPIO line offset must be specified')
    offsets = rest.slice(1).map((o) => { if (!/^\d+$/.test(o)) die(`invalid GPIO offset: ${o}`); return Number(o) })
    const failMon = (code) => die(`error waiting for events: ${ERR[code]}`)
    chip = lookupV1(rest[0])
    if (!chip) failMon('ENOENT')
    if (denied(chip)) failMon('EACCES')
    for (const o of offsets) if (o >= chip.lines) failMon('EINVAL')
    for (const o of offsets) if (request(chip, o, { consumer: 'gpiomon', direction: 'input', bias, activeLow })) failMon('EBUSY')
  } else {
    if (rest.length < 1) die('at least one GPIO line must be specified')
    if (chipId === null) notEmulated('lines by name (no -c)')
    chip = lookupV2(chipId)
    if (!chip) die(`cannot find GPIO chip character device '${chipId}'`)
    if (denied(chip)) die(`unable to open chip '/dev/${chip.name}': ${ERR.EACCES}`)
    for (const o of rest) {
      if (!/^\d+$/.test(o)) die(`cannot find line '${o}'`)
      if (Number(o) >= chip.lines) die(`offset ${o} is out of range on chip '${chipId}'`)
    }
    offsets = rest.map(Number)
    for (const o of offsets) if (request(chip, o, { consumer, direction: 'input', bias, activeLow, debounceUs })) die(`unable to request lines on chip /dev/${chip.name}: ${ERR.EBUSY}`)
  }

  let out = ''
  const write = (text) => {
    out += text
    // Without -b (v1), stdout on a pipe is fully buffered: nothing arrives before 4 KB.
    if (lineBuffered || out.length >= 4096) { process.stdout.write(out); out = '' }
  }
  let done = 0
  const emit = (offset, isRising) => {
    const ns = process.hrtime.bigint()
    const sec = ns / 1000000000n
    const nsec = ns % 1000000000n
    if (!quiet) {
      if (format !== null) {
        write(format.replace(/%(.)/g, (_, f) => {
          if (f === 'o') return String(offset)
          if (f === 'e') return v2 ? (isRising ? '1' : '2') : (isRising ? '1' : '0')
          if (v2 && f === 'E') return isRising ? 'rising' : 'falling'
          if (v2 && f === 'c') return chip.name
          if (v2 && f === 'l') return 'unnamed'
          if (!v2 && f === 's') return String(sec)
          if (!v2 && f === 'n') return String(nsec)
          if (v2 && f === 'S') return `${sec}.${String(nsec).padStart(9, '0')}`
          if (f === '%') return '%'
          return `%${f}`
        }) + '\n')
      } else if (v2) {
        write(`${sec}.${String(nsec).padStart(9, '0')}\t${isRising ? 'rising' : 'falling'}\t${chip.name} ${offset}\n`)
      } else {
        write(`event: ${isRising ? ' RISING EDGE' : 'FALLING EDGE'} offset: ${offset} timestamp: [${rpad(String(sec), 8)}.${String(nsec).padStart(9, '0')}]\n`)
      }
    }
    if (wanted && ++done >= wanted) { process.stdout.write(out); process.exit(0) }
  }
  for (const offset of offsets) {
    // The line idles at its bias; a line without one reads high (an external pull-up).
    let reported = bias === 'pull-down' ? 0 : 1
    let timer = null
    const report = (level) => {
      if (level === reported) return
      reported = level
      const logical = activeLow ? 1 - level : level
      const isRising = logical === 1
      if ((edges === 'rising' && !isRising) || (edges === 'falling' && isRising)) return
      emit(offset, isRising)
    }
    watchInput(chip, offset, reported, (level) => {
      if (debounceUs === 0) { report(level); return }
      // The kernel's debounce: an edge is reported once the line has stayed at its level for the period.
      if (timer) clearTimeout(timer)
      timer = setTimeout(() => { timer = null; report(level) }, debounceUs / 1000)
    })
  }
  // The lines are requested and watched (edges from now on are seen): v2 says so if asked.
  if (v2 && banner) process.stdout.write(rest.length > 1 ? `Monitoring lines ${rest.slice(0, -1).map((l) => `'${l}'`).join(', ')} and '${rest.at(-1)}'...\n` : `Monitoring line '${rest[0]}'...\n`)
}

const tools = { gpiodetect, gpioinfo, gpioset, gpiomon }
if (!tools[tool]) notEmulated(tool)
tools[tool]()
