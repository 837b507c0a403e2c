// The home-network path's device half, browser-safe (`@doorbell/device/lan`): the Node doorbell
// and the browser camera node import the same link.
export { MqttLink, refusedCredentials, type MqttLinkOptions } from './mqttLink'
