-- What the Document service knows of each application: the declared facts its
-- documents must support (from the submission), and whether uploads are still taken.
CREATE TABLE mutuo_documents_applications (
  application_id uuid PRIMARY KEY,
  facts          jsonb NOT NULL,
  status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'validated', 'closed'))
);
