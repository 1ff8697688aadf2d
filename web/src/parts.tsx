/** A table's header row. */
export function Head({ columns }: { columns: readonly string[] }) {
  return (
    <thead>
      <tr>
        {columns.map((column) => (
          <th key={column}>{column}</th>
        ))}
      </tr>
    </thead>
  );
}

/** What the page has to say about the last thing done, if anything. */
export function Notice({ message }: { message: string | undefined }) {
  return message ? (
    <p className="notice" data-testid="notice">
      {message}
    </p>
  ) : null;
}

/** Euros as Italians write them; `whole` drops the cents. */
export const euros = (value: number, whole = false) =>
  value.toLocaleString('it-IT', { style: 'currency', currency: 'EUR', ...(whole ? { maximumFractionDigits: 0 } : {}) });
