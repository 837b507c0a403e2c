// The home-network path's device half, browser-safe (`@doorbell/device/lan`): the Node doorbell
// and the browser camera node import the same link.
export { MqttLink, type MqttLinkOptions } from './mqttLink'
// Written once in core (the viewer's hub client needs it too); here too, beside the link it is about.
export { refusedCredentials } from '@doorbell/core'
export { HubOutbox, heldTransport, MAX_HELD, type HeldMessage } from './hubOutbox'
