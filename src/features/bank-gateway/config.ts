/** The Bank Gateway's settings, read once by the composition root (app/config.ts). */
export type GatewayConfig = {
  /** tcp://host:port; unset: a simulated mainframe runs in this process. */
  readonly mainframeUrl: string | undefined;
  readonly mainframeTimeoutMs: number;
  readonly mainframeAttempts: number;
  readonly simulatedLatencyMs: number;
  readonly simulatedTimeoutRate: number;
  readonly simulatedRefusalRate: number;
};
