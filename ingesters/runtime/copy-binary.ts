/**
 * Postgres binary COPY: the file header, and the encodings of the few field types landing sends
 * this way (int8, and one-dimensional int4 and numeric arrays). Each field is its 32-bit
 * length and its bytes, big-endian, as the server's receive functions read them.
 */

export const INT4_OID = 23;
export const NUMERIC_OID = 1700;

/** PGCOPY\n\377\r\n\0, flags 0, no header extension. */
export const COPY_BINARY_HEADER = Buffer.from([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00,
  0, 0, 0, 0, 0, 0, 0, 0]);
/** A tuple count of -1 ends the data. */
export const COPY_BINARY_TRAILER = Buffer.from([0xff, 0xff]);

/** A tuple's field count. */
export function tupleStart(fields: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeInt16BE(fields, 0);
  return b;
}

export function int8Field(value: bigint): Buffer {
  const b = Buffer.allocUnsafe(12);
  b.writeInt32BE(8, 0);
  b.writeBigInt64BE(value, 4);
  return b;
}

const ARRAY_HEADER_BYTES = 20; // ndim, has-nulls flag, element type, length, lower bound

/** The header of a one-dimensional array field of `count` elements taking `elementBytes` in all. */
export function writeArrayHeader(out: Buffer, at: number, elementType: number, count: number, elementBytes: number): number {
  if (count === 0) {
    out.writeInt32BE(12, at); // an empty array: no dimensions
    out.writeInt32BE(0, at + 4);
    out.writeInt32BE(0, at + 8);
    out.writeInt32BE(elementType, at + 12);
    return at + 16;
  }
  out.writeInt32BE(ARRAY_HEADER_BYTES + elementBytes, at);
  out.writeInt32BE(1, at + 4);
  out.writeInt32BE(0, at + 8);
  out.writeInt32BE(elementType, at + 12);
  out.writeInt32BE(count, at + 16);
  out.writeInt32BE(1, at + 20);
  return at + 24;
}

/** Bytes of an int4[] field of `count` elements (each a length of 4 and the value). */
export const int4ArrayBytes = (count: number): number => (count === 0 ? 16 : 4 + ARRAY_HEADER_BYTES + count * 8);

/**
 * A decimal text (as written by float32Text: digits with an optional sign and point, no exponent;
 * or NaN, Infinity, -Infinity) as the binary numeric it reads as: base-10000 digits, weight of the
 * first, sign, and the number of decimal digits after the point.
 */
export function numericBinary(text: string): Buffer {
  const special = text === 'NaN' ? 0xc000 : text === 'Infinity' ? 0xd000 : text === '-Infinity' ? 0xf000 : -1;
  if (special >= 0) {
    const b = Buffer.alloc(8);
    b.writeUInt16BE(special, 4);
    return b;
  }
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) throw new Error(`binary COPY: not a plain decimal: ${text}`);
  const [, sign, int, frac = ''] = m as unknown as [string, string, string, string?];
  const intPadded = '0'.repeat((4 - (int.length % 4)) % 4) + int;
  const fracPadded = frac + '0'.repeat((4 - (frac.length % 4)) % 4);
  const groups: number[] = [];
  for (let k = 0; k < intPadded.length; k += 4) groups.push(+intPadded.slice(k, k + 4));
  let weight = groups.length - 1;
  for (let k = 0; k < fracPadded.length; k += 4) groups.push(+fracPadded.slice(k, k + 4));
  let first = 0;
  while (first < groups.length && groups[first] === 0) { first++; weight--; }
  let last = groups.length;
  while (last > first && groups[last - 1] === 0) last--;
  const digits = groups.slice(first, last);
  if (digits.length === 0) weight = 0;
  const b = Buffer.allocUnsafe(8 + digits.length * 2);
  b.writeInt16BE(digits.length, 0);
  b.writeInt16BE(weight, 2);
  b.writeUInt16BE(digits.length > 0 && sign === '-' ? 0x4000 : 0, 4);
  b.writeInt16BE(frac.length, 6);
  digits.forEach((d, k) => b.writeInt16BE(d, 8 + k * 2));
  return b;
}
