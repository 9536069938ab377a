"""Emails to guests: what each kind says (`wording`, pure), the files it is rendered from
(`templates/`, by `rendering`), and how it leaves through SES (`ses`)."""
