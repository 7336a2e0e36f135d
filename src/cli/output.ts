// Output of the client commands: plain tables and "key: value" blocks for
// people, the server's raw JSON (`-o json`) for scripts.
import { type Command, InvalidArgumentError, Option } from 'commander';

export type OutputFormat = 'table' | 'json';

export interface OutputOptions {
  output: OutputFormat;
}

/** Adds `-o, --output table|json` to a command. */
export function withOutput(cmd: Command): Command {
  return cmd.addOption(
    new Option('-o, --output <format>', 'output format: table (for people) or json (the raw JSON, for scripts)')
      .argParser((v: string): OutputFormat => {
        const f = v.toLowerCase();
        if (f !== 'table' && f !== 'json') throw new InvalidArgumentError("Use 'table' or 'json'.");
        return f;
      })
      .default('table' as OutputFormat),
  );
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

const cell = (v: unknown): string => {
  if (v === undefined || v === null || v === '') return '-';
  return String(v).replace(/\s*\n\s*/g, ' ');
};

/** Formats rows as left-aligned columns under upper-case headers, two spaces apart. */
export function formatTable(headers: string[], rows: unknown[][]): string {
  const text = [headers, ...rows.map((r) => headers.map((_, i) => cell(r[i])))];
  const widths = headers.map((_, i) => Math.max(...text.map((r) => (r[i] ?? '').length)));
  return text
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function printTable(headers: string[], rows: unknown[][], emptyMessage: string): void {
  if (rows.length === 0) {
    process.stdout.write(`${emptyMessage}\n`);
    return;
  }
  process.stdout.write(`${formatTable(headers, rows)}\n`);
}

/** A VM's reason, for people: "QemuStartFailed: QEMU could not start …". */
export const reasonText = (p: { statusCode?: string; statusMessage?: string }) =>
  p.statusMessage ? `${p.statusCode ? `${p.statusCode}: ` : ''}${p.statusMessage}` : undefined;

/**
 * Prints a table whose rows may carry a note (why a VM failed, say): the row's state gets a mark [n] and the
 * notes follow the table, numbered, so long reasons do not widen every row.
 */
export function printTableWithNotes(headers: string[], rows: { cells: unknown[]; note?: string; noteColumn: number }[], emptyMessage: string): void {
  let n = 0;
  const notes: string[] = [];
  const cells = rows.map((r) => {
    if (!r.note) return r.cells;
    n++;
    notes.push(`[${n}] ${r.note}`);
    return r.cells.map((c, i) => (i === r.noteColumn ? `${cell(c)} [${n}]` : c));
  });
  printTable(headers, cells, emptyMessage);
  if (notes.length) process.stdout.write(`\n${notes.join('\n')}\n`);
}

/** Formats `label: value` lines with the values aligned; undefined values are left out. */
export function formatFields(fields: [string, unknown][]): string {
  const shown = fields.filter(([, v]) => v !== undefined);
  const width = Math.max(0, ...shown.map(([k]) => k.length + 1));
  return shown.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${cell(v)}`).join('\n');
}

export function printFields(fields: [string, unknown][]): void {
  process.stdout.write(`${formatFields(fields)}\n`);
}

/** Prints one line for people (suppressed in json mode, where stdout is only JSON). */
export function say(opts: OutputOptions, line: string): void {
  if (opts.output !== 'json') process.stdout.write(`${line}\n`);
}

/** A short local time for tables: "2026-03-01 14:05". */
export function shortTime(iso: string | null | undefined): string | undefined {
  if (!iso) return undefined;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** The resource group named in an ARM id. */
export function groupOf(id: string): string | undefined {
  return /\/resourceGroups\/([^/]+)/i.exec(id)?.[1];
}
