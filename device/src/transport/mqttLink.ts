export { MqttLink, type MqttLinkOptions } from '@doorbell/core'
