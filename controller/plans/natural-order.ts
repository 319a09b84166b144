// The order Heddle sorts update names in: natural, as sourcefrog's natsort.

const DIGIT = /^[0-9]$/;

/** Two runs of digits by their value, however long: no leading zeros, then the longer is larger. */
function compareDigits(a: string, b: string): number {
  const left = a.replace(/^0+/, "");
  const right = b.replace(/^0+/, "");
  if (left.length !== right.length) return left.length - right.length;
  return compareText(left, right);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function digitRun(text: string, start: number): string {
  let end = start;
  while (end < text.length && DIGIT.test(text.charAt(end))) end++;
  return text.slice(start, end);
}

/**
 * Natural order as sourcefrog's natsort (Heddle's choice): walking both names,
 * runs of digits compare by value (update2 < update10), other characters one
 * by one, case-sensitively. Names equal that way (update2, update02) are
 * ordered as plain strings, so the order is total and the same every boot.
 */
export function naturalCompare(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (DIGIT.test(a.charAt(i)) && DIGIT.test(b.charAt(j))) {
      const left = digitRun(a, i);
      const right = digitRun(b, j);
      const order = compareDigits(left, right);
      if (order !== 0) return order;
      i += left.length;
      j += right.length;
      continue;
    }
    const order = compareText(a.charAt(i), b.charAt(j));
    if (order !== 0) return order;
    i++;
    j++;
  }
  const rest = a.length - i - (b.length - j);
  return rest !== 0 ? rest : compareText(a, b);
}
