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
 * Secrets Manager access for one invocation and one secret. Every read is memoised, so each
 * version is fetched at most once however many times a step asks for it.
 */
export class SecretStore {
  private description?: Promise<DescribeSecretResponse>;
  private readonly values = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly client: SecretsManagerClient,
    readonly secretId: string,
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
    try {
      const output = await this.client.send(
        new GetSecretValueCommand({
          SecretId: this.secretId,
          VersionStage: query.stage,
          ...(query.versionId === undefined ? {} : { VersionId: query.versionId }),
        }),
      );
      if (output.SecretString === undefined) {
        throw new InvalidSecretError(
          `${query.stage} holds SecretBinary; rotation needs a SecretString`,
          'SecretString',
        );
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
