"""Sending one email through Amazon SES (API v2): a MIME message with a text and an HTML part,
from MAIL_FROM with the venue's name as display name. SES's answers are sorted into sent,
busy (throttled or failing on its side: nothing was sent, try again) and refused (final)."""
from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from chalicelib.config import config

# SES's answers that mean "not now": throttling, quotas per second, and its own faults.
BUSY_CODES = frozenset({"TooManyRequestsException", "Throttling", "ThrottlingException", "InternalFailure",
                        "ServiceUnavailable", "InternalServerError", "RequestTimeout"})


class Busy(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def message(sender_name: str, to: str, subject: str, text: str, html: str) -> EmailMessage:
    """The MIME message. Python's email package encodes a non-ASCII display name or subject
    (RFC 2047), which SES requires and string concatenation would get wrong."""
    from email.headerregistry import Address  # its header parser is large: only the sender loads it

    mail_from = config().mail_from
    local, _, domain = mail_from.partition("@")
    email = EmailMessage()
    email["From"] = Address(display_name=sender_name, username=local, domain=domain)
    email["To"] = to
    email["Subject"] = subject
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = make_msgid(domain=domain or None)
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    return email


class SesSender:
    """The `MailSender` of parts.py on SES; app.py builds one per container. The client (and
    boto3) is built on the first send, and only by the sender."""

    def __init__(self) -> None:
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import boto3  # type: ignore[import-untyped,unused-ignore]  # boto3 ships no types; its stubs are not pinned
            from botocore.config import Config

            # botocore's standard mode already retries throttling and 5xx with backoff; what is left
            # after that comes back to us as Busy, and the notice is delivered again later. Three tries
            # of at most 5 + 10 seconds stay well inside the sender's 60-second timeout.
            self._client = boto3.client("sesv2", config=Config(retries={"mode": "standard", "max_attempts": 3},
                                                               connect_timeout=5, read_timeout=10))
        return self._client

    def send(self, email: EmailMessage, to: str) -> str:
        """SES's message id. Raises Busy or Refused when SES answered no; any other exception means
        the outcome is unknown."""
        from botocore.exceptions import ClientError

        try:
            answer = self.client().send_email(FromEmailAddress=config().mail_from, Destination={"ToAddresses": [to]},
                                              Content={"Raw": {"Data": email.as_bytes()}})
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in BUSY_CODES or status >= 500 or status == 429:
                raise Busy(code or str(status)) from None
            raise Refused(code or str(status)) from None
        return str(answer["MessageId"])
