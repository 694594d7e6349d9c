// Exit codes of the tidemark command, so scripts and schedulers can tell failures apart.

export const EXIT = {
  OK: 0,
  /** Something failed while running (a server unreachable, a restore refused, a drill that found a difference). */
  FAILURE: 1,
  /** The command line was wrong (commander's own code). */
  USAGE: 2,
  /** The configuration is missing or invalid. */
  CONFIG: 3,
} as const;
