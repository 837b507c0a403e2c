/**
 * The cloud setup as a library (the command is cli.ts): tests provision doorbells on the cloud
 * stand-ins through the same code a person runs.
 */
export { run, run as runSetup, observe, certificateIdOf, type CloudApi, type RunOptions } from './apply'
export { awsCloud, awsClients, isReadCommand, type AwsOptions } from './aws'
export { SetupError } from './errors'
export { resourceNames, checkIds, type ResourceNames } from './names'
export { planSetup, planTeardown, formatPlan, changes, FILES, type Plan, type SetupRequest, type Step, type Observed } from './plan'
export { deviceIotPolicy, kvsMasterPolicy, kvsRoleTrustPolicy, viewerPolicy, VIEWER_CLIENT_ID_PREFIX, type PolicyDocument } from './policies'
export { main, USAGE } from './cli'
