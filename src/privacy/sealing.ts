import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SealedValueError } from '../platform/eventstore/personal-data.ts';

/**
 * A value encrypted with its data subject's key, as it sits in a stored event:
 * `v1.<subjectId>.<base64url IV>.<base64url ciphertext and GCM tag>`.
 */
export type Sealed = { readonly $sealed: string };

/** A sealed value that cannot be opened: tampered with, moved to another subject, malformed, or the key is not its subject's. */
export class SealError extends SealedValueError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SealError';
  }
}

const formatVersion = 'v1';
const algorithm = 'aes-256-gcm';
export const sealingKeyBytes = 32;
const ivBytes = 12;
const tagBytes = 16;

type SealedParts = { readonly subjectId: string; readonly iv: Buffer; readonly ciphertext: Buffer; readonly tag: Buffer };

/**
 * Encrypts the value's JSON for this subject. The IV is random each time, so two seals of
 * one value differ and reveal nothing about it being the same.
 */
export function sealValue(key: Uint8Array, subjectId: string, value: unknown): Sealed {
  requireKey(key);
  if (subjectId === '' || subjectId.includes('.')) throw new SealError('a subject id must be non-empty and hold no dot');
  const json = JSON.stringify(value) as string | undefined;
  if (json === undefined) throw new SealError('only a value JSON can hold can be sealed');
  const iv = randomBytes(ivBytes);
  const cipher = createCipheriv(algorithm, key, iv, { authTagLength: tagBytes });
  // The prefix is authenticated: a sealed value copied under another subject's id fails to open.
  const prefix = `${formatVersion}.${subjectId}`;
  cipher.setAAD(Buffer.from(prefix, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(json, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return { $sealed: `${prefix}.${iv.toString('base64url')}.${ciphertext.toString('base64url')}` };
}

/** The value sealed with this key; throws a SealError if it was tampered with, belongs elsewhere, or the key is not its subject's. */
export function unsealValue(key: Uint8Array, sealed: Sealed): unknown {
  requireKey(key);
  const { subjectId, iv, ciphertext, tag } = parse(sealed);
  let json: string;
  try {
    const decipher = createDecipheriv(algorithm, key, iv, { authTagLength: tagBytes });
    decipher.setAAD(Buffer.from(`${formatVersion}.${subjectId}`, 'utf8'));
    decipher.setAuthTag(tag);
    json = Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  } catch (error) {
    throw new SealError(`a value sealed for subject ${subjectId} does not open with this key, or was altered`, { cause: error });
  }
  return JSON.parse(json);
}

/** An object with the single own key `$sealed` holding a v1 sealed text. */
export function isSealed(value: unknown): value is Sealed {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  if (keys.length !== 1 || keys[0] !== '$sealed') return false;
  const text = (value as { $sealed: unknown }).$sealed;
  return typeof text === 'string' && text.startsWith(`${formatVersion}.`);
}

/** The subject whose key the value is sealed with (read from the text; it opens only if that is true). */
export function sealedSubject(sealed: Sealed): string {
  return parse(sealed).subjectId;
}

function parse(sealed: Sealed): SealedParts {
  const parts = typeof sealed?.$sealed === 'string' ? sealed.$sealed.split('.') : [];
  const [version, subjectId, ivText, bodyText] = parts;
  if (parts.length !== 4 || version !== formatVersion || !subjectId || !ivText || !bodyText) throw new SealError('not a v1 sealed value');
  const iv = Buffer.from(ivText, 'base64url');
  const body = Buffer.from(bodyText, 'base64url');
  // Re-encoding must give the text back: no second spelling of the same bytes is accepted.
  if (iv.length !== ivBytes || body.length < tagBytes || iv.toString('base64url') !== ivText || body.toString('base64url') !== bodyText) {
    throw new SealError('not a v1 sealed value');
  }
  return { subjectId, iv, ciphertext: body.subarray(0, body.length - tagBytes), tag: body.subarray(body.length - tagBytes) };
}

function requireKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== sealingKeyBytes) throw new SealError(`a key is ${sealingKeyBytes} bytes`);
}

// ---- files ----

/** What a sealed file starts with, then the subject id's length (one byte), the id, the IV, the ciphertext and the GCM tag. */
const fileMagic = Buffer.from('MUTUO-SEALED-v1\n', 'utf8');

/** A file's bytes encrypted for this subject: as sealValue, without the JSON and base64 a value takes. */
export function sealBytes(key: Uint8Array, subjectId: string, bytes: Uint8Array): Uint8Array {
  requireKey(key);
  const id = Buffer.from(subjectId, 'utf8');
  if (id.length === 0 || id.length > 255 || subjectId.includes('.')) throw new SealError('a subject id must be 1 to 255 bytes and hold no dot');
  const iv = randomBytes(ivBytes);
  const cipher = createCipheriv(algorithm, key, iv, { authTagLength: tagBytes });
  cipher.setAAD(Buffer.from(`${formatVersion}.${subjectId}`, 'utf8'));
  return Buffer.concat([fileMagic, Buffer.of(id.length), id, iv, cipher.update(bytes), cipher.final(), cipher.getAuthTag()]);
}

/** The subject a sealed file belongs to, or undefined for bytes that are not a sealed file (written before sealing, say). */
export function sealedBytesSubject(bytes: Uint8Array): string | undefined {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (data.length < fileMagic.length + 1 || !data.subarray(0, fileMagic.length).equals(fileMagic)) return undefined;
  const length = data[fileMagic.length]!;
  if (length === 0 || data.length < fileMagic.length + 1 + length + ivBytes + tagBytes) return undefined;
  return data.subarray(fileMagic.length + 1, fileMagic.length + 1 + length).toString('utf8');
}

/** The file sealed with this key; throws a SealError if it was altered, is not sealed, or the key is not its subject's. */
export function unsealBytes(key: Uint8Array, bytes: Uint8Array): Uint8Array {
  requireKey(key);
  const subjectId = sealedBytesSubject(bytes);
  if (subjectId === undefined) throw new SealError('not a sealed file');
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const start = fileMagic.length + 1 + Buffer.byteLength(subjectId, 'utf8');
  const iv = data.subarray(start, start + ivBytes);
  const ciphertext = data.subarray(start + ivBytes, data.length - tagBytes);
  try {
    const decipher = createDecipheriv(algorithm, key, iv, { authTagLength: tagBytes });
    decipher.setAAD(Buffer.from(`${formatVersion}.${subjectId}`, 'utf8'));
    decipher.setAuthTag(data.subarray(data.length - tagBytes));
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (error) {
    throw new SealError(`a file sealed for subject ${subjectId} does not open with this key, or was altered`, { cause: error });
  }
}
