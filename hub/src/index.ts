export { startHub, MQTT_WS_PATH, type Hub } from './hub'
export { mayPublish, maySubscribe } from './broker/gate'
export { SqlitePersistence } from './broker/persistence/sqlitePersistence'
export { PgHistoryStore, HISTORY_RETENTION_LOCK } from './cluster/pgHistory'
