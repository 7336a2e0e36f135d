// A table of rows with a header per column (scope="col", for screen readers);
// a column without a header is an actions column. A column given as `false`
// is left out (one only admins see, say).
import type { ReactNode } from 'react';

export interface Column<T> {
  key: string;
  header?: ReactNode;
  cell: (row: T) => ReactNode;
  /** The cell's test id, for the browser tests. */
  testId?: (row: T) => string;
}

export function DataTable<T>({ rows, columns, rowKey }: { rows: T[]; columns: (Column<T> | false)[]; rowKey: (row: T) => string }) {
  const shown = columns.filter((c): c is Column<T> => c !== false);
  return (
    <table>
      <thead>
        <tr>
          {shown.map((c) => (
            <th key={c.key} scope="col">
              {c.header}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={rowKey(r)}>
            {shown.map((c) => (
              <td key={c.key} data-testid={c.testId?.(r)}>
                {c.cell(r)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
