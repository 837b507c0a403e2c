export * from './peer'
export * from './open'
