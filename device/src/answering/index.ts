/**
 * The answering side, platform-free: what the Node doorbell and the browser camera node share
 * (`@doorbell/device/answering`). No Node and no DOM imports: a browser bundles it as is.
 */
export { startAnsweringSide, type AnsweringSide, type AnsweringSideOptions, type AnsweringPairing, type HubLinkOptions } from './side'
export {
  answeringSession, SessionError, CONNECT_TIMEOUT_MS, offersAudio,
  type AnsweringPeer, type PeerSession, type SessionIdentity, type ChannelData, type ControlChannel, type MediaPeers, type PeerEvents, type SessionOptions
} from './session'
export { talkLease, noSpeaker, type TalkFloor, type TalkLeaseOptions, type TalkSession, type TalkSessionInput, type QuickReplyPlayer } from './talk'
export { outOfCallCommands, resultOf, RESULT_MESSAGE_MAX, type CommandKind, type CommandKinds, type CommandContext, type CommandOutcome } from './commands'
export { lockDoor, openDoorCommand, NACK_MESSAGE_MAX, type Door, type DoorLock, type DoorSession, type DoorSessionInput, type LockDoorOptions, type UnlockResult } from './door'
export { DevicePairing, CameraNodePairing, pairedMemberOf } from './pairing'
