import {
  DescribeSecretCommand,
  type DescribeSecretResponse,
  GetRandomPasswordCommand,
  type GetRandomPasswordRequest,
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { InvalidSecretError, StageError } from '../common/errors.js';
import { Stage } from './types.js';

/** True for a Secrets Manager error of this name (matched by name: the SDK may be bundled twice). */
export const isServiceError = (error: unknown, name: string): boolean =>
  error instanceof Error && error.name === name;

/** What the store reads of one version. */
export interface VersionQuery {
  versionId?: string;
  stage: Stage;
}

/**
 * Secret values by version id, kept across the invocations of one warm function. A version's
 * value never changes once stored (PutSecretValue refuses another value for the same token),
 * so an entry is right for as long as the version exists; which version holds which label is
 * always asked afresh (DescribeSecret). Bounded, oldest entries dropped first.
 */
export class VersionCache {
  private readonly entries = new Map<string, string>();
  constructor(private readonly capacity = 64) {}

  get(secretId: string, versionId: string): string | undefined {
    return this.entries.get(`${secretId}\n${versionId}`);
  }

  set(secretId: string, versionId: string, value: string): void {
    const key = `${secretId}\n${versionId}`;
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }
}

/**
 * Secrets Manager access for one invocation and one secret. Every read is memoised, so each
 * version is fetched at most once however many times a step asks for it; with a
 * {@link VersionCache}, a version read or written by an earlier step of the same warm function
 * is not fetched again at all.
 */
export class SecretStore {
  private description?: Promise<DescribeSecretResponse>;
  private readonly values = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly client: SecretsManagerClient,
    readonly secretId: string,
    private readonly cache?: VersionCache,
  ) {}

  describe(): Promise<DescribeSecretResponse> {
    this.description ??= this.client.send(new DescribeSecretCommand({ SecretId: this.secretId }));
    return this.description;
  }

  /** The version's SecretString, or undefined when that version or stage has no value. */
  read(query: VersionQuery): Promise<string | undefined> {
    const key = `${query.versionId ?? ''}/${query.stage}`;
    let value = this.values.get(key);
    if (value === undefined) {
      value = this.fetch(query);
      this.values.set(key, value);
    }
    return value;
  }

  private async fetch(query: VersionQuery): Promise<string | undefined> {
    let versionId = query.versionId;
    if (this.cache) {
      // Which version holds the label comes from DescribeSecret, which every step makes anyway.
      versionId ??= Object.entries((await this.describe()).VersionIdsToStages ?? {}).find(
        ([, stages]) => stages?.includes(query.stage),
      )?.[0];
      if (versionId === undefined) return undefined;
      const cached = this.cache.get(this.secretId, versionId);
      if (cached !== undefined) return cached;
    }
    try {
      const output = await this.client.send(
        new GetSecretValueCommand({
          SecretId: this.secretId,
          VersionStage: query.stage,
          ...(versionId === undefined ? {} : { VersionId: versionId }),
        }),
      );
      if (output.SecretString === undefined) {
        throw new InvalidSecretError(
          `${query.stage} holds SecretBinary; rotation needs a SecretString`,
          'SecretString',
        );
      }
      if (this.cache && output.VersionId) {
        this.cache.set(this.secretId, output.VersionId, output.SecretString);
      }
      return output.SecretString;
    } catch (error) {
      if (isServiceError(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
  }

  /** Stores the pending value. Resolves false when another value already holds the token. */
  async putPending(token: string, secretString: string, rotationToken?: string): Promise<boolean> {
    try {
      await this.client.send(
        new PutSecretValueCommand({
          SecretId: this.secretId,
          ClientRequestToken: token,
          SecretString: secretString,
          VersionStages: [Stage.pending],
          ...(rotationToken === undefined ? {} : { RotationToken: rotationToken }),
        }),
      );
      this.values.set(`${token}/${Stage.pending}`, Promise.resolve(secretString));
      this.cache?.set(this.secretId, token, secretString);
      return true;
    } catch (error) {
      if (isServiceError(error, 'ResourceExistsException')) {
        this.values.delete(`${token}/${Stage.pending}`);
        return false;
      }
      throw error;
    }
  }

  /** Moves AWSCURRENT to `token`; the service gives the old holder AWSPREVIOUS. */
  async moveCurrent(token: string, from: string | undefined): Promise<void> {
    await this.client.send(
      new UpdateSecretVersionStageCommand({
        SecretId: this.secretId,
        VersionStage: Stage.current,
        MoveToVersionId: token,
        ...(from === undefined ? {} : { RemoveFromVersionId: from }),
      }),
    );
  }

  async randomPassword(policy: GetRandomPasswordRequest): Promise<string> {
    const output = await this.client.send(new GetRandomPasswordCommand(policy));
    if (!output.RandomPassword) throw new StageError('GetRandomPassword returned no password');
    return output.RandomPassword;
  }
}
