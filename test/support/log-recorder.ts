import type { RotationLogger } from '../../shared/common/logger.js';
import { rememberOutput } from './leak-guard.js';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  attributes: Record<string, unknown>;
}

/** A logger that keeps every line, to assert on decisions and on the absence of secrets. */
export class LogRecorder implements RotationLogger {
  readonly lines: LogLine[] = [];

  private push(level: LogLine['level'], message: string, attributes: Record<string, unknown>[]) {
    const line: LogLine = { level, message, attributes: Object.assign({}, ...attributes) };
    this.lines.push(line);
    rememberOutput(JSON.stringify(line));
  }
  debug(message: string, ...attributes: Record<string, unknown>[]) {
    this.push('debug', message, attributes);
  }
  info(message: string, ...attributes: Record<string, unknown>[]) {
    this.push('info', message, attributes);
  }
  warn(message: string, ...attributes: Record<string, unknown>[]) {
    this.push('warn', message, attributes);
  }
  error(message: string, ...attributes: Record<string, unknown>[]) {
    this.push('error', message, attributes);
  }

  /** Everything written, as one string, for leak checks. */
  text(): string {
    return this.lines.map((line) => JSON.stringify(line)).join('\n');
  }

  messages(): string[] {
    return this.lines.map((line) => line.message);
  }
}
