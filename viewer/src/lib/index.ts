export * from './hubClient'
export * from './callSession'
export * from './home'
