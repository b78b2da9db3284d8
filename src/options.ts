/**
 * Argument checks shared by the device and UDP layers: `ERR_INVALID_ARG`
 * naming the option.
 * @module
 */
import { VectunError } from './errors.js';

export function invalid(message: string): VectunError {
  return new VectunError('ERR_INVALID_ARG', message);
}

export function optionalInt(value: unknown, option: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${option} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

export function optionalBool(value: unknown, option: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  throw invalid(`${option} must be a boolean, got ${typeof value}`);
}
