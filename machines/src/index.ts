export * from './lock'
export * from './deviceCall'
export * from './viewerCall'
export * from './describe'
