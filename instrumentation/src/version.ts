/** Name and version reported as the instrumentation scope of our spans. */
export const PACKAGE_NAME = '@routewatch/instrumentation' as const;
export const PACKAGE_VERSION = '0.1.0' as const;
