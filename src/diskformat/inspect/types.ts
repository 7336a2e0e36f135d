import type { BoundedReader } from './reader.js';

export type DiskFormat = 'raw' | 'vhd' | 'vhdx' | 'qcow2' | 'vmdk';
export const DISK_FORMATS: readonly DiskFormat[] = ['raw', 'vhd', 'vhdx', 'qcow2', 'vmdk'];

export type DetailValue = string | number | boolean;

export interface InspectResult {
  format: DiskFormat;
  /** Guest-visible size in bytes, as qemu-img reports it. */
  virtualSize: number;
  fileSize: number;
  details: Record<string, DetailValue>;
}

export interface FormatContext {
  reader: BoundedReader;
  fileSize: number;
  head: Buffer;
  tail: Buffer;
  /** Refuses zero sizes and sizes above the configured limit. */
  checkSize(size: number, what?: string): void;
}

export interface FormatResult {
  virtualSize: number;
  details: Record<string, DetailValue>;
}

/** Printable, bounded excerpt of untrusted text for error messages. */
export function excerpt(s: string, max = 80): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}
