/** What the usage ledger reports to its onError besides database and disk failures. */

/** Records the ledger gave up on: the queue was full, the ledger was closed, or the database rejected the row itself. */
export class UsageRecordsDroppedError extends Error {
  override readonly name = "UsageRecordsDroppedError";
  readonly dropped: number;

  constructor(dropped: number, why: string, options?: ErrorOptions) {
    super(`usage ledger dropped ${dropped} record(s): ${why}`, options);
    this.dropped = dropped;
  }
}

/** A record the database refused for its content, kept in the dead-letter file (reported once per record). */
export class UsageRecordDeadLetteredError extends Error {
  override readonly name = "UsageRecordDeadLetteredError";
  readonly requestId: string;
  readonly sqlstate: string | null;

  constructor(requestId: string, file: string, sqlstate: string | null, options?: ErrorOptions) {
    super(`the database rejected the usage record of request ${requestId} (SQLSTATE ${sqlstate ?? "none"}); kept in ${file}`, options);
    this.requestId = requestId;
    this.sqlstate = sqlstate;
  }
}
