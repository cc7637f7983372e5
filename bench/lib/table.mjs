/**
 * A plain-text table: the first column left-aligned, the others right-aligned (they hold numbers).
 * `groups` optionally puts a heading over runs of columns: [{ title, span }].
 */
export function formatTable(headers, rows, groups) {
  const cells = [headers, ...rows].map((row) => row.map((cell) => String(cell)));
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column].length)));
  const line = (row) =>
    row
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column])))
      .join('  ')
      .trimEnd();
  const lines = [];
  if (groups) {
    let column = 0;
    const parts = [];
    for (const { title, span } of groups) {
      const width = widths.slice(column, column + span).reduce((total, w) => total + w, 0) + 2 * (span - 1);
      parts.push(
        title.length > width ? title : title.padStart(Math.ceil((width + title.length) / 2)).padEnd(width),
      );
      column += span;
    }
    lines.push(parts.join('  ').trimEnd());
  }
  lines.push(line(cells[0]));
  lines.push(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const row of cells.slice(1)) lines.push(line(row));
  return lines.join('\n');
}

/** Fixed decimals, or a dash for a missing figure. */
export function fixed(value, decimals) {
  return value === undefined || Number.isNaN(value) ? '-' : value.toFixed(decimals);
}

/** Requests per second: whole numbers, with thousands separators. */
export function rate(value) {
  return value === undefined || Number.isNaN(value) ? '-' : Math.round(value).toLocaleString('en-US');
}

export function ratio(numerator, denominator) {
  if (numerator === undefined || denominator === undefined || !(denominator > 0)) return '-';
  return `${(numerator / denominator).toFixed(2)}×`;
}
