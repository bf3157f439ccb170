/**
 * A stateful, in-memory fake of AWS Secrets Manager that follows shared/PROTOCOL.md (and the
 * real service where the two differ; see the notes on each command).
 *
 * Commands take the SDK input shapes and return the SDK output shapes. Failures are the real
 * exception classes of @aws-sdk/client-secrets-manager, so code under test sees exactly what it
 * would see from the SDK. The fake can be plugged into the SDK with `mockSecretsManager`
 * (aws-sdk-client-mock) or served over HTTP (fake-secrets-manager-http.ts).
 */
import { randomInt, randomUUID } from 'node:crypto';
import {
  DeleteSecretCommand,
  type DeleteSecretRequest,
  type DeleteSecretResponse,
  DescribeSecretCommand,
  type DescribeSecretRequest,
  type DescribeSecretResponse,
  GetRandomPasswordCommand,
  type GetRandomPasswordRequest,
  type GetRandomPasswordResponse,
  GetSecretValueCommand,
  type GetSecretValueRequest,
  type GetSecretValueResponse,
  InvalidParameterException,
  InvalidRequestException,
  ListSecretVersionIdsCommand,
  type ListSecretVersionIdsRequest,
  type ListSecretVersionIdsResponse,
  PutSecretValueCommand,
  type PutSecretValueRequest,
  type PutSecretValueResponse,
  ResourceExistsException,
  ResourceNotFoundException,
  RotateSecretCommand,
  type RotateSecretRequest,
  type RotateSecretResponse,
  SecretsManagerClient,
  type SecretsManagerClientResolvedConfig,
  SecretsManagerServiceException,
  type ServiceInputTypes,
  type ServiceOutputTypes,
  type Tag,
  UpdateSecretVersionStageCommand,
  type UpdateSecretVersionStageRequest,
  type UpdateSecretVersionStageResponse,
} from '@aws-sdk/client-secrets-manager';
import { type AwsStub, mockClient } from 'aws-sdk-client-mock';
import { rememberSecretValue } from './leak-guard.js';

export const AWSCURRENT = 'AWSCURRENT';
export const AWSPENDING = 'AWSPENDING';
export const AWSPREVIOUS = 'AWSPREVIOUS';

/** Largest SecretString / SecretBinary the service accepts, in bytes. */
export const MAX_SECRET_BYTES = 65_536;

/** `` !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ `` — the service's punctuation set. */
export const PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
const LOWERCASE = 'abcdefghijklmnopqrstuvwxyz';
const UPPERCASE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const NUMBERS = '0123456789';
const ARN_SUFFIX_CHARS = `${LOWERCASE}${UPPERCASE}${NUMBERS}`;

/** The commands the fake answers (the operation names, as in `X-Amz-Target`). */
export const COMMANDS = [
  'DescribeSecret',
  'GetSecretValue',
  'PutSecretValue',
  'UpdateSecretVersionStage',
  'GetRandomPassword',
  'DeleteSecret',
  'RotateSecret',
  'ListSecretVersionIds',
] as const;
export type CommandName = (typeof COMMANDS)[number];

export type SecretsManagerStub = AwsStub<
  ServiceInputTypes,
  ServiceOutputTypes,
  SecretsManagerClientResolvedConfig
>;

export interface CallRecord {
  command: string;
  input: unknown;
}

export interface CreateSecretOptions {
  name: string;
  secretString?: string;
  secretBinary?: Uint8Array;
  /** Default true. `null` leaves RotationEnabled out of DescribeSecret (counts as enabled). */
  rotationEnabled?: boolean | null;
  /** Default `arn:aws:lambda:<region>:<account>:function:rotation`. `null` leaves it out. */
  rotationLambdaArn?: string | null;
  tags?: Tag[];
  description?: string;
  /** Version id of the initial version; default randomUUID(). */
  versionId?: string;
}

export interface FaultOptions {
  /** How many calls in a row fail; default 1. */
  times?: number;
  /**
   * false (default): the call fails before it has any effect.
   * true: the call takes effect, then fails (a lost response: the caller cannot know).
   */
  afterEffect?: boolean;
}

export interface FakeSecretsManagerOptions {
  region?: string;
  accountId?: string;
  /** Clock for CreatedDate, LastChangedDate, DeletedDate...; default `new Date()`. */
  now?: () => Date;
  /**
   * PutSecretValue with a token whose version has a value replaces the value instead of
   * answering ResourceExistsException, as moto (a Secrets Manager emulator) does: the
   * functions must stay correct without that one refusal.
   */
  overwriteVersions?: boolean;
}

interface Version {
  id: string;
  secretString?: string;
  secretBinary?: Uint8Array;
  stages: string[];
  createdDate: Date;
  /** Set on versions registered by RotateSecret. */
  rotationToken?: string;
}

interface Secret {
  arn: string;
  name: string;
  description?: string;
  rotationEnabled: boolean | null;
  rotationLambdaArn: string | null;
  tags?: Tag[];
  versions: Map<string, Version>;
  createdDate: Date;
  lastChangedDate: Date;
  lastRotatedDate?: Date;
  deletedDate?: Date;
}

interface Fault {
  error: Error;
  remaining: number;
  afterEffect: boolean;
}

/** A service error that the SDK has no class for (e.g. ValidationException, ThrottlingException). */
export function serviceError(
  name: string,
  message: string,
  fault: 'client' | 'server' = 'client',
): SecretsManagerServiceException {
  return new SecretsManagerServiceException({
    name,
    $fault: fault,
    message,
    $metadata: { httpStatusCode: fault === 'server' ? 500 : 400 },
  });
}

const meta = () => ({ httpStatusCode: 400 });

function notFound(message: string): ResourceNotFoundException {
  return new ResourceNotFoundException({ message, Message: message, $metadata: meta() });
}
function invalidRequest(message: string): InvalidRequestException {
  return new InvalidRequestException({ message, Message: message, $metadata: meta() });
}
function invalidParameter(message: string): InvalidParameterException {
  return new InvalidParameterException({ message, Message: message, $metadata: meta() });
}
function resourceExists(message: string): ResourceExistsException {
  return new ResourceExistsException({ message, Message: message, $metadata: meta() });
}
function validation(field: string, constraint: string): SecretsManagerServiceException {
  return serviceError(
    'ValidationException',
    `1 validation error detected: Value at '${field}' failed to satisfy constraint: ${constraint}`,
  );
}

const SECRET_NOT_FOUND = "Secrets Manager can't find the specified secret.";
const MARKED_FOR_DELETION =
  "You can't perform this operation on the secret because it was marked for deletion.";

function normaliseCommand(command: string): string {
  return command.endsWith('Command') ? command.slice(0, -'Command'.length) : command;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a).equals(Buffer.from(b));
}

function hasValue(version: Version): boolean {
  return version.secretString !== undefined || version.secretBinary !== undefined;
}

function randomChars(alphabet: string, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet.charAt(randomInt(alphabet.length));
  return out;
}

function snapshot<T>(value: T): T {
  try {
    return structuredClone(value);
  } catch {
    return value;
  }
}

export class FakeSecretsManager {
  /** Every command received, in order, with a copy of its input (faulted calls included). */
  readonly calls: CallRecord[] = [];
  /** RotationToken of each PutSecretValue received, in order (undefined when absent). */
  readonly putRotationTokens: (string | undefined)[] = [];
  /** Every password GetRandomPassword handed out. */
  readonly generatedPasswords: string[] = [];

  private readonly region: string;
  private readonly accountId: string;
  private readonly now: () => Date;
  private readonly overwriteVersions: boolean;
  private readonly secrets = new Map<string, Secret>();
  private readonly faults = new Map<string, Fault[]>();
  private readonly storedValues: string[] = [];

  constructor(options: FakeSecretsManagerOptions = {}) {
    this.region = options.region ?? 'us-east-1';
    this.accountId = options.accountId ?? '123456789012';
    this.now = options.now ?? (() => new Date());
    this.overwriteVersions = options.overwriteVersions ?? false;
  }

  /** Forget every secret, call, fault and recorded value. */
  reset(): void {
    this.secrets.clear();
    this.faults.clear();
    this.calls.length = 0;
    this.putRotationTokens.length = 0;
    this.generatedPasswords.length = 0;
    this.storedValues.length = 0;
  }

  // ---------------------------------------------------------------- set-up helpers (not logged)

  /** Creates a secret whose single version holds AWSCURRENT. Returns its ARN. */
  createSecret(options: CreateSecretOptions): string {
    const existing = this.findByName(options.name);
    if (existing?.deletedDate) {
      throw invalidRequest(
        `You can't create this secret because a secret with this name is already scheduled for deletion.`,
      );
    }
    if (existing) {
      throw resourceExists(
        `The operation failed because the secret ${options.name} already exists.`,
      );
    }
    if (options.secretString !== undefined && options.secretBinary !== undefined) {
      throw invalidParameter(
        "You can't specify both a binary secret value and a string secret value in the same secret.",
      );
    }
    this.checkSize(options.secretString, options.secretBinary);
    const now = this.now();
    const arn = `arn:aws:secretsmanager:${this.region}:${this.accountId}:secret:${options.name}-${randomChars(ARN_SUFFIX_CHARS, 6)}`;
    const secret: Secret = {
      arn,
      name: options.name,
      rotationEnabled: options.rotationEnabled === undefined ? true : options.rotationEnabled,
      rotationLambdaArn:
        options.rotationLambdaArn === undefined
          ? `arn:aws:lambda:${this.region}:${this.accountId}:function:rotation`
          : options.rotationLambdaArn,
      versions: new Map(),
      createdDate: now,
      lastChangedDate: now,
    };
    if (options.description !== undefined) secret.description = options.description;
    if (options.tags !== undefined) secret.tags = snapshot(options.tags);
    if (options.secretString !== undefined || options.secretBinary !== undefined) {
      const version: Version = {
        id: options.versionId ?? randomUUID(),
        stages: [AWSCURRENT],
        createdDate: now,
      };
      this.setValue(version, options.secretString, options.secretBinary);
      secret.versions.set(version.id, version);
    }
    this.secrets.set(arn, secret);
    return arn;
  }

  /**
   * Plays RotateSecret (without invoking anything): fails with InvalidRequestException while a
   * previous rotation is incomplete (AWSPENDING on a version without AWSCURRENT); otherwise
   * registers `token` as a new version with AWSPENDING and no value. Returns the token.
   * Unlike the real RotateSecret it does not switch RotationEnabled on, so tests can check the
   * functions' "rotation not enabled" guard.
   */
  startRotation(secretId: string, token: string = randomUUID()): string {
    const secret = this.liveSecret(secretId);
    const pending = this.holderOf(secret, AWSPENDING);
    if (pending && !pending.stages.includes(AWSCURRENT)) {
      throw invalidRequest(
        "A previous rotation isn't complete. That rotation will be reattempted.",
      );
    }
    if (secret.versions.has(token)) {
      throw invalidRequest(`A version with the ClientRequestToken ${token} already exists.`);
    }
    const version: Version = {
      id: token,
      stages: [],
      createdDate: this.now(),
      rotationToken: randomUUID(),
    };
    secret.versions.set(token, version);
    this.attachStage(secret, AWSPENDING, token);
    return token;
  }

  /** The RotationToken of the rotation that registered `clientRequestToken`. */
  rotationTokenFor(secretId: string, clientRequestToken: string): string | undefined {
    return this.secret(secretId).versions.get(clientRequestToken)?.rotationToken;
  }

  /**
   * Takes `stage` off whichever version has it, as the service may do with AWSPENDING after a
   * successful rotation. Not a command: not logged, no checks.
   */
  removeLabel(secretId: string, stage: string): void {
    this.detachStage(this.secret(secretId), stage);
  }

  /** Switches RotationEnabled; `null` leaves it out of DescribeSecret. */
  setRotationEnabled(secretId: string, enabled: boolean | null): void {
    this.secret(secretId).rotationEnabled = enabled;
  }

  /**
   * The next `times` (default 1) calls of `command` ('PutSecretValue' or 'PutSecretValueCommand')
   * throw `error`, before any effect unless `afterEffect` is set.
   */
  failNext(command: string, error: Error, options: FaultOptions = {}): void {
    const name = normaliseCommand(command);
    const queue = this.faults.get(name) ?? [];
    queue.push({
      error,
      remaining: options.times ?? 1,
      afterEffect: options.afterEffect ?? false,
    });
    this.faults.set(name, queue);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  // ------------------------------------------------------------- introspection (not logged)

  /** The ARN of a secret given by name, ARN or partial ARN. */
  arnOf(secretId: string): string {
    return this.secret(secretId).arn;
  }

  /** version id → stages, for versions that have at least one stage. */
  labels(secretId: string): Record<string, string[]> {
    return this.versionIdsToStages(this.secret(secretId));
  }

  /** SecretString of the version holding `stage` (undefined when none, or it has no value). */
  valueOf(secretId: string, stage: string = AWSCURRENT): string | undefined {
    return this.holderOf(this.secret(secretId), stage)?.secretString;
  }

  /** Version id holding `stage`. */
  versionOf(secretId: string, stage: string = AWSCURRENT): string | undefined {
    return this.holderOf(this.secret(secretId), stage)?.id;
  }

  /** SecretString of a version by id, labelled or not. */
  valueOfVersion(secretId: string, versionId: string): string | undefined {
    return this.secret(secretId).versions.get(versionId)?.secretString;
  }

  /** Every version id, deprecated ones included, in creation order. */
  versionIds(secretId: string): string[] {
    return [...this.secret(secretId).versions.keys()];
  }

  /** Every SecretString ever stored or sent in a PutSecretValue, for leak checks. */
  allStoredValues(): string[] {
    return [...new Set(this.storedValues)];
  }

  /** Commands received so far, by name, optionally only one kind. */
  commandNames(): string[] {
    return this.calls.map((call) => call.command);
  }

  callsOf<T = unknown>(command: string): T[] {
    const name = normaliseCommand(command);
    return this.calls.filter((call) => call.command === name).map((call) => call.input as T);
  }

  // ------------------------------------------------------------------------------ commands

  describeSecret(input: DescribeSecretRequest): DescribeSecretResponse {
    return this.run('DescribeSecret', input, () => {
      const secret = this.secret(this.requireId(input.SecretId));
      const out: DescribeSecretResponse = {
        ARN: secret.arn,
        Name: secret.name,
        CreatedDate: secret.createdDate,
        LastChangedDate: secret.lastChangedDate,
        VersionIdsToStages: this.versionIdsToStages(secret),
      };
      if (secret.description !== undefined) out.Description = secret.description;
      if (secret.rotationEnabled !== null) out.RotationEnabled = secret.rotationEnabled;
      if (secret.rotationLambdaArn !== null) out.RotationLambdaARN = secret.rotationLambdaArn;
      if (secret.lastRotatedDate) out.LastRotatedDate = secret.lastRotatedDate;
      if (secret.deletedDate) out.DeletedDate = secret.deletedDate;
      if (secret.tags) out.Tags = snapshot(secret.tags);
      return out;
    });
  }

  getSecretValue(input: GetSecretValueRequest): GetSecretValueResponse {
    return this.run('GetSecretValue', input, () => {
      const secret = this.liveSecret(this.requireId(input.SecretId));
      let version: Version | undefined;
      if (input.VersionId !== undefined) {
        version = secret.versions.get(input.VersionId);
        if (
          !version ||
          (input.VersionStage !== undefined && !version.stages.includes(input.VersionStage))
        ) {
          throw notFound(
            input.VersionStage === undefined
              ? `Secrets Manager can't find the specified secret value for VersionId: ${input.VersionId}`
              : `Secrets Manager can't find the specified secret value for VersionId: ${input.VersionId} and staging label: ${input.VersionStage}`,
          );
        }
      } else {
        const stage = input.VersionStage ?? AWSCURRENT;
        version = this.holderOf(secret, stage);
        if (!version) {
          throw notFound(
            `Secrets Manager can't find the specified secret value for staging label: ${stage}`,
          );
        }
      }
      if (!hasValue(version)) {
        throw notFound(
          `Secrets Manager can't find the specified secret value for VersionId: ${version.id}`,
        );
      }
      const out: GetSecretValueResponse = {
        ARN: secret.arn,
        Name: secret.name,
        VersionId: version.id,
        VersionStages: [...version.stages],
        CreatedDate: version.createdDate,
      };
      if (version.secretString !== undefined) out.SecretString = version.secretString;
      if (version.secretBinary !== undefined)
        out.SecretBinary = Uint8Array.from(version.secretBinary);
      return out;
    });
  }

  putSecretValue(input: PutSecretValueRequest): PutSecretValueResponse {
    return this.run('PutSecretValue', input, () => {
      this.putRotationTokens.push(input.RotationToken);
      if (input.SecretString !== undefined) {
        this.storedValues.push(input.SecretString);
        rememberSecretValue(input.SecretString);
      }
      const secret = this.liveSecret(this.requireId(input.SecretId));
      if (input.SecretString !== undefined && input.SecretBinary !== undefined) {
        throw invalidParameter(
          "You can't specify both a binary secret value and a string secret value in the same secret.",
        );
      }
      if (input.SecretString === undefined && input.SecretBinary === undefined) {
        throw invalidParameter('You must provide either SecretString or SecretBinary.');
      }
      this.checkSize(input.SecretString, input.SecretBinary);
      // The API reference: VersionStages holds 1 to 20 items when given.
      if (input.VersionStages !== undefined && input.VersionStages.length === 0) {
        throw validation('versionStages', 'Member must have length greater than or equal to 1');
      }
      const token = input.ClientRequestToken ?? randomUUID();
      const existing = secret.versions.get(token);
      if (existing && hasValue(existing)) {
        const same =
          existing.secretString === input.SecretString &&
          sameBytes(existing.secretBinary, input.SecretBinary);
        if (!same && !this.overwriteVersions) {
          throw resourceExists(
            "You can't modify an existing version, you can only create a new version.",
          );
        }
        if (same) {
          return {
            ARN: secret.arn,
            Name: secret.name,
            VersionId: existing.id,
            VersionStages: [...existing.stages],
          };
        }
      }
      const version: Version = existing ?? { id: token, stages: [], createdDate: this.now() };
      this.setValue(version, input.SecretString, input.SecretBinary);
      secret.versions.set(token, version);
      for (const stage of input.VersionStages ?? [AWSCURRENT]) {
        this.attachStage(secret, stage, token);
      }
      secret.lastChangedDate = this.now();
      return {
        ARN: secret.arn,
        Name: secret.name,
        VersionId: version.id,
        VersionStages: [...version.stages],
      };
    });
  }

  updateSecretVersionStage(
    input: UpdateSecretVersionStageRequest,
  ): UpdateSecretVersionStageResponse {
    return this.run('UpdateSecretVersionStage', input, () => {
      const secret = this.liveSecret(this.requireId(input.SecretId));
      const stage = input.VersionStage;
      if (stage === undefined || stage === '') {
        throw validation('versionStage', 'Member must not be null');
      }
      const moveTo = input.MoveToVersionId;
      const removeFrom = input.RemoveFromVersionId;
      if (moveTo === undefined && removeFrom === undefined) {
        throw invalidParameter('You must specify MoveToVersionId or RemoveFromVersionId.');
      }
      for (const id of [moveTo, removeFrom]) {
        if (id !== undefined && !secret.versions.has(id)) {
          throw notFound(
            `Secrets Manager can't find the specified secret value for VersionId: ${id}`,
          );
        }
      }
      const holder = this.holderOf(secret, stage)?.id;
      if (holder !== undefined) {
        // Attaching a label to the version that already has it needs no RemoveFromVersionId.
        const needsRemove = moveTo !== holder;
        if ((removeFrom !== undefined || needsRemove) && removeFrom !== holder) {
          throw invalidParameter(
            removeFrom === undefined
              ? `The staging label ${stage} is already attached to version ${holder}. Specify RemoveFromVersionId to move it.`
              : `The staging label ${stage} is attached to version ${holder}, not to the version ${removeFrom} specified in RemoveFromVersionId.`,
          );
        }
        if (stage === AWSCURRENT && moveTo === undefined) {
          throw invalidParameter(
            "You can't remove the staging label AWSCURRENT from a version without moving it to another version.",
          );
        }
      }
      if (moveTo !== undefined) {
        this.attachStage(secret, stage, moveTo);
      } else if (holder !== undefined) {
        this.detachStage(secret, stage);
      }
      secret.lastChangedDate = this.now();
      return { ARN: secret.arn, Name: secret.name };
    });
  }

  getRandomPassword(input: GetRandomPasswordRequest): GetRandomPasswordResponse {
    return this.run('GetRandomPassword', input, () => {
      const length = input.PasswordLength ?? 32;
      if (!Number.isInteger(length) || length < 1) {
        throw validation('passwordLength', 'Member must have value greater than or equal to 1');
      }
      if (length > 4096) {
        throw validation('passwordLength', 'Member must have value less than or equal to 4096');
      }
      const exclude = new Set(input.ExcludeCharacters ?? '');
      const keep = (alphabet: string) => [...alphabet].filter((c) => !exclude.has(c)).join('');
      const types: string[] = [];
      if (!input.ExcludeLowercase) types.push(keep(LOWERCASE));
      if (!input.ExcludeUppercase) types.push(keep(UPPERCASE));
      if (!input.ExcludeNumbers) types.push(keep(NUMBERS));
      if (!input.ExcludePunctuation) types.push(keep(PUNCTUATION));
      const required = types.filter((t) => t.length > 0);
      let pool = required.join('');
      if (input.IncludeSpace && !exclude.has(' ')) pool += ' ';
      if (pool.length === 0) {
        throw invalidParameter(
          'The password must include at least one character type: every type is excluded.',
        );
      }
      const requireEach = input.RequireEachIncludedType ?? true;
      if (requireEach && length < required.length) {
        throw invalidParameter(
          `The password length ${length} is too short to include one character of each of the ${required.length} required types.`,
        );
      }
      const chars = requireEach ? required.map((t) => randomChars(t, 1)) : [];
      while (chars.length < length) chars.push(randomChars(pool, 1));
      for (let i = chars.length - 1; i > 0; i--) {
        const j = randomInt(i + 1);
        const tmp = chars[i] as string;
        chars[i] = chars[j] as string;
        chars[j] = tmp;
      }
      const password = chars.join('');
      this.generatedPasswords.push(password);
      return { RandomPassword: password };
    });
  }

  deleteSecret(input: DeleteSecretRequest): DeleteSecretResponse {
    return this.run('DeleteSecret', input, () => {
      const secret = this.secret(this.requireId(input.SecretId));
      if (secret.deletedDate) throw invalidRequest(MARKED_FOR_DELETION);
      const now = this.now();
      if (input.ForceDeleteWithoutRecovery) {
        this.secrets.delete(secret.arn);
        return { ARN: secret.arn, Name: secret.name, DeletionDate: now };
      }
      const days = input.RecoveryWindowInDays ?? 30;
      secret.deletedDate = now;
      return {
        ARN: secret.arn,
        Name: secret.name,
        DeletionDate: new Date(now.getTime() + days * 86_400_000),
      };
    });
  }

  /** RotateSecret without invoking a function: registers the AWSPENDING version (see startRotation). */
  rotateSecret(input: RotateSecretRequest): RotateSecretResponse {
    return this.run('RotateSecret', input, () => {
      const secret = this.liveSecret(this.requireId(input.SecretId));
      const token = this.startRotation(secret.arn, input.ClientRequestToken);
      if (input.RotationLambdaARN !== undefined) secret.rotationLambdaArn = input.RotationLambdaARN;
      secret.rotationEnabled = true;
      return { ARN: secret.arn, Name: secret.name, VersionId: token };
    });
  }

  listSecretVersionIds(input: ListSecretVersionIdsRequest): ListSecretVersionIdsResponse {
    return this.run('ListSecretVersionIds', input, () => {
      const secret = this.secret(this.requireId(input.SecretId));
      const versions = [...secret.versions.values()].filter(
        (v) => input.IncludeDeprecated || v.stages.length > 0,
      );
      return {
        ARN: secret.arn,
        Name: secret.name,
        Versions: versions.map((v) => ({
          VersionId: v.id,
          VersionStages: [...v.stages],
          CreatedDate: v.createdDate,
        })),
      };
    });
  }

  /** Dispatch by operation name (used by the HTTP server). */
  dispatch(command: string, input: unknown): unknown {
    switch (normaliseCommand(command)) {
      case 'DescribeSecret':
        return this.describeSecret(input as DescribeSecretRequest);
      case 'GetSecretValue':
        return this.getSecretValue(input as GetSecretValueRequest);
      case 'PutSecretValue':
        return this.putSecretValue(input as PutSecretValueRequest);
      case 'UpdateSecretVersionStage':
        return this.updateSecretVersionStage(input as UpdateSecretVersionStageRequest);
      case 'GetRandomPassword':
        return this.getRandomPassword(input as GetRandomPasswordRequest);
      case 'DeleteSecret':
        return this.deleteSecret(input as DeleteSecretRequest);
      case 'RotateSecret':
        return this.rotateSecret(input as RotateSecretRequest);
      case 'ListSecretVersionIds':
        return this.listSecretVersionIds(input as ListSecretVersionIdsRequest);
      default:
        throw new UnknownCommandError(command);
    }
  }

  /** Wires every command of an aws-sdk-client-mock stub to this fake. Returns the stub. */
  attachTo(stub: SecretsManagerStub): SecretsManagerStub {
    // callsFake with an async function: a thrown SDK exception becomes a rejected send().
    const s = stub;
    s.on(DescribeSecretCommand).callsFake(async (input) => this.describeSecret(input));
    s.on(GetSecretValueCommand).callsFake(async (input) => this.getSecretValue(input));
    s.on(PutSecretValueCommand).callsFake(async (input) => this.putSecretValue(input));
    s.on(UpdateSecretVersionStageCommand).callsFake(async (input) =>
      this.updateSecretVersionStage(input),
    );
    s.on(GetRandomPasswordCommand).callsFake(async (input) => this.getRandomPassword(input));
    s.on(DeleteSecretCommand).callsFake(async (input) => this.deleteSecret(input));
    s.on(RotateSecretCommand).callsFake(async (input) => this.rotateSecret(input));
    s.on(ListSecretVersionIdsCommand).callsFake(async (input) => this.listSecretVersionIds(input));
    return stub;
  }

  // ------------------------------------------------------------------------------ internals

  private run<T>(command: CommandName, input: unknown, body: () => T): T {
    this.calls.push({ command, input: snapshot(input) });
    const fault = this.takeFault(command);
    if (fault && !fault.afterEffect) throw fault.error;
    const out = body();
    if (fault) throw fault.error;
    return out;
  }

  private takeFault(command: string): Fault | undefined {
    const queue = this.faults.get(command);
    const fault = queue?.[0];
    if (!queue || !fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) queue.shift();
    return fault;
  }

  private requireId(secretId: string | undefined): string {
    if (secretId === undefined || secretId === '') {
      throw validation('secretId', 'Member must not be null');
    }
    return secretId;
  }

  private findByName(name: string): Secret | undefined {
    for (const secret of this.secrets.values()) if (secret.name === name) return secret;
    return undefined;
  }

  /** By full ARN, partial ARN (without the random suffix) or name. */
  private secret(secretId: string): Secret {
    const byArn = this.secrets.get(secretId);
    if (byArn) return byArn;
    const prefix = `arn:aws:secretsmanager:${this.region}:${this.accountId}:secret:`;
    const name = secretId.startsWith(prefix) ? secretId.slice(prefix.length) : secretId;
    const found =
      secretId.startsWith('arn:') && !secretId.startsWith(prefix)
        ? undefined
        : this.findByName(name);
    if (!found) throw notFound(SECRET_NOT_FOUND);
    return found;
  }

  private liveSecret(secretId: string): Secret {
    const secret = this.secret(secretId);
    if (secret.deletedDate) throw invalidRequest(MARKED_FOR_DELETION);
    return secret;
  }

  private holderOf(secret: Secret, stage: string): Version | undefined {
    for (const version of secret.versions.values())
      if (version.stages.includes(stage)) return version;
    return undefined;
  }

  private versionIdsToStages(secret: Secret): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const version of secret.versions.values()) {
      if (version.stages.length > 0) out[version.id] = [...version.stages];
    }
    return out;
  }

  private detachStage(secret: Secret, stage: string): void {
    for (const version of secret.versions.values()) {
      version.stages = version.stages.filter((s) => s !== stage);
    }
  }

  /**
   * Puts `stage` on `versionId`, taking it off any other version. Moving AWSCURRENT gives the
   * version that loses it AWSPREVIOUS (which leaves its previous holder).
   */
  private attachStage(secret: Secret, stage: string, versionId: string): void {
    const target = secret.versions.get(versionId);
    if (!target)
      throw notFound(
        `Secrets Manager can't find the specified secret value for VersionId: ${versionId}`,
      );
    const loser = this.holderOf(secret, stage);
    if (loser === target) return;
    this.detachStage(secret, stage);
    target.stages.push(stage);
    if (stage === AWSCURRENT) {
      if (loser) {
        this.detachStage(secret, AWSPREVIOUS);
        loser.stages.push(AWSPREVIOUS);
      }
      if (target.rotationToken !== undefined) secret.lastRotatedDate = this.now();
    }
  }

  private setValue(version: Version, secretString?: string, secretBinary?: Uint8Array): void {
    if (secretString !== undefined) {
      version.secretString = secretString;
      this.storedValues.push(secretString);
      rememberSecretValue(secretString);
    }
    if (secretBinary !== undefined) version.secretBinary = Uint8Array.from(secretBinary);
  }

  private checkSize(secretString?: string, secretBinary?: Uint8Array): void {
    if (secretString !== undefined && Buffer.byteLength(secretString, 'utf8') > MAX_SECRET_BYTES) {
      throw validation(
        'secretString',
        `Member must have length less than or equal to ${MAX_SECRET_BYTES}`,
      );
    }
    if (secretBinary !== undefined && secretBinary.byteLength > MAX_SECRET_BYTES) {
      throw validation(
        'secretBinary',
        `Member must have length less than or equal to ${MAX_SECRET_BYTES}`,
      );
    }
  }
}

/** Thrown by `dispatch` for an operation the fake does not implement. */
export class UnknownCommandError extends Error {
  constructor(readonly command: string) {
    super(`The fake Secrets Manager does not implement ${command}`);
    this.name = 'UnknownOperationException';
  }
}

/**
 * Mocks `SecretsManagerClient#send` (every instance, or only `target` when an instance is given)
 * with aws-sdk-client-mock and routes each command to `fake`. Call `restore()` on the returned
 * stub when done. Note that the stub's `reset()` also removes the routing: call
 * `fake.attachTo(stub)` again after it, or use `resetHistory()`.
 */
export function mockSecretsManager(
  fake: FakeSecretsManager,
  target: typeof SecretsManagerClient | SecretsManagerClient = SecretsManagerClient,
): SecretsManagerStub {
  return fake.attachTo(mockClient(target));
}
