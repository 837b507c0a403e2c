/** The inspector's platform-free parts, for the benches and tests outside the viewer. */
export { DEFINITIONS, firedTransitions, transitionsOf } from './definitions'
export { layoutChart } from './layout'
export { modelAt, Recording, stepTimes, entriesBetween } from './recording'
