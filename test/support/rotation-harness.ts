import type { Database } from '../../shared/databases/types.js';
import { createRotationHandler, type RotationHandler } from '../../shared/rotation/handler.js';
import type { Strategy } from '../../shared/rotation/types.js';
import type { DatabaseSecret } from '../../shared/strategies/database-secret.js';
import { FakeSecretsManager, type FakeSecretsManagerOptions } from './fake-secrets-manager.js';
import {
  type FakeSecretsManagerServer,
  startFakeSecretsManagerServer,
} from './fake-secrets-manager-http.js';
import { LogRecorder } from './log-recorder.js';
import { randomName } from './pg-admin.js';
import { type RotationEvent, retry, rotate, type Step } from './rotation-driver.js';

/**
 * One Secrets Manager for a test file, served over HTTP so the handler uses the real AWS SDK
 * (found through SECRETS_MANAGER_ENDPOINT, as a VPC endpoint would be).
 */
export class RotationHarness {
  readonly fake: FakeSecretsManager;
  readonly logs = new LogRecorder();
  private server?: FakeSecretsManagerServer;

  constructor(options: FakeSecretsManagerOptions = {}) {
    this.fake = new FakeSecretsManager(options);
  }

  async start(): Promise<this> {
    this.server = await startFakeSecretsManagerServer(this.fake);
    return this;
  }

  get endpoint(): string {
    if (!this.server) throw new Error('RotationHarness.start() first');
    return this.server.endpoint;
  }

  /** A secret named `app/<random>` holding `secretString`; resolves its ARN. */
  appSecret(secretString: string): string {
    return this.fake.createSecret({ name: `app/${randomName('secret')}`, secretString });
  }

  /** A secret named `master/<random>` holding `secretString`; resolves its ARN. */
  masterSecret(secretString: string): string {
    return this.fake.createSecret({ name: `master/${randomName('m')}`, secretString });
  }

  /** A handler as the function would build it, talking to the fake over HTTP. */
  handler<S>(strategy: Strategy<S>, env: Record<string, string> = {}): RotationHandler {
    return createRotationHandler({
      strategy,
      logger: this.logs,
      env: { SECRETS_MANAGER_ENDPOINT: this.endpoint, ...env },
    });
  }

  invoker(handler: RotationHandler) {
    return (event: RotationEvent) => handler(event, { getRemainingTimeInMillis: () => 60_000 });
  }

  rotate(
    handler: RotationHandler,
    secretId: string,
    options: { stopAfter?: Step; token?: string } = {},
  ) {
    return rotate({ fake: this.fake, secretId, invoke: this.invoker(handler), ...options });
  }

  retry(handler: RotationHandler, secretId: string, token: string) {
    return retry({ fake: this.fake, secretId, invoke: this.invoker(handler), token });
  }

  /** A stored stage, parsed. */
  secret(
    secretId: string,
    stage = 'AWSCURRENT',
  ): Record<string, unknown> & { username: string; password: string } {
    const value = this.fake.valueOf(secretId, stage);
    if (value === undefined) throw new Error(`no ${stage} value on ${secretId}`);
    return JSON.parse(value);
  }

  /** No value the fake ever stored appears in any log line. */
  leakedSecrets(): string[] {
    const text = this.logs.text();
    const leaked: string[] = [];
    for (const stored of this.fake.allStoredValues()) {
      const parsed = JSON.parse(stored) as Record<string, unknown>;
      for (const key of ['password']) {
        const value = parsed[key];
        if (typeof value === 'string' && text.includes(value))
          leaked.push(`${key} of a stored version`);
      }
    }
    return leaked;
  }

  async stop(): Promise<void> {
    await this.server?.close();
  }
}

export type { Database, DatabaseSecret };
