// `db.table` patterns, as the capture and tier configurations write them.

/** `*` matches any run of characters and `?` one character; case-sensitive like MySQL on Linux. */
export function globToRegExp(pattern: string): RegExp {
  const escaped = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

/** Whether `db.table` is selected by the include patterns and by none of the exclude ones. */
export function tableMatcher(
  include: readonly string[],
  exclude: readonly string[],
): (name: string) => boolean {
  const inc = include.map(globToRegExp);
  const exc = exclude.map(globToRegExp);
  return (name) => inc.some((r) => r.test(name)) && !exc.some((r) => r.test(name));
}
