-- What marketing says about the launch on its public page (plain text, may be empty).
ALTER TABLE launches ADD COLUMN description text NOT NULL DEFAULT '';
