// Rows assembled from three parts: the ranker's input per candidate (core/ranking/factored.ts),
// [one shared prefix | a row of a resident table | the candidate's own suffix].

const F32: usize = 4;

/**
 * out row r = prefix[0 .. prefixWidth) | table row rows[r] (tableWidth floats) | suffix row r
 * (suffixWidth floats), for r ∈ [0, n). Every argument but the counts and widths is a byte offset;
 * `rows` holds i32 row indexes, which the host has checked.
 */
export function gatherRows(
  out: usize, n: i32, prefix: usize, prefixWidth: i32, table: usize, tableWidth: i32, rows: usize, suffix: usize, suffixWidth: i32,
): void {
  const prefixBytes = <usize>prefixWidth * F32;
  const tableBytes = <usize>tableWidth * F32;
  const suffixBytes = <usize>suffixWidth * F32;
  const rowBytes = prefixBytes + tableBytes + suffixBytes;
  for (let r = 0; r < n; r++) {
    const at = out + <usize>r * rowBytes;
    memory.copy(at, prefix, prefixBytes);
    memory.copy(at + prefixBytes, table + <usize>load<i32>(rows + (<usize>r << 2)) * tableBytes, tableBytes);
    memory.copy(at + prefixBytes + tableBytes, suffix + <usize>r * suffixBytes, suffixBytes);
  }
}
