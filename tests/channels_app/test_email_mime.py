"""The SMTP provider builds its MIME bytes itself (fast path) and leaves addresses that
need IDNA to Django's mail classes; both arrive intact at a real SMTP server."""

from __future__ import annotations

from channels_app.channels.base import OutboundMessage
from channels_app.channels.email import SMTPProvider, mime_bytes


def test_fast_and_django_paths_both_deliver_intact_mail(smtp_server):
    provider = SMTPProvider(
        {
            "host": smtp_server.host,
            "port": smtp_server.port,
            "from_email": "消息中心 <noreply@msgcenter.test>",
        }
    )
    messages = [
        OutboundMessage(
            delivery_id=1,
            address="li@example.com",
            subject="订单 A123 已发货",
            body="你好 Li\n.\nline two",
            body_html="<p>订单 <b>A123</b></p>",
            headers={"List-Unsubscribe": "<http://x.test/u/abc>"},
        ),
        OutboundMessage(
            delivery_id=2, address="hans@bücher.example", subject="Plain", body="Text only"
        ),
    ]
    assert (
        mime_bytes(
            from_email="a@b.test",
            to=messages[1].address,
            subject="s",
            body="b",
            body_html="",
            headers={},
        )
        is None
    )  # IDNA: Django's path

    results = provider.send_batch(messages)

    assert [r.ok for r in results] == [True, True]
    mails = {m.rcpt_tos[0]: m for m in smtp_server.messages}
    fast = mails["li@example.com"]
    assert fast.subject == "订单 A123 已发货"
    assert fast.part("text/plain") == "你好 Li\n.\nline two"
    assert fast.part("text/html") == "<p>订单 <b>A123</b></p>"
    assert fast.message["Message-ID"] == results[0].provider_message_id
    assert fast.message["List-Unsubscribe"] == "<http://x.test/u/abc>"
    assert fast.mail_from == "noreply@msgcenter.test"
    slow = next(m for rcpt, m in mails.items() if rcpt != "li@example.com")
    assert slow.subject == "Plain" and slow.part("text/plain").strip() == "Text only"
    assert slow.message["Message-ID"] == results[1].provider_message_id
