"""Loopback servers that imitate providers' APIs as their public docs describe them.

Each fake checks a request the way the provider does (method, path, headers, signature,
body shape) and answers with the provider's documented success or error body. The
signatures are recomputed here from the documented algorithms, independently of the
adapters. A request the provider would reject is answered with the provider's error and
also recorded in `violations`, so a test sees both what the adapter did with the error
and that the adapter got the protocol wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from typing import Any

from tests.servers import HTTPServer, RecordedRequest, Reply


class Rejected(Exception):
    """The provider refuses the request: `reply` is what it answers."""

    def __init__(self, problem: str, reply: Reply) -> None:
        super().__init__(problem)
        self.reply = reply


class FakeProvider:
    """A provider on a loopback port. Subclasses implement `handle(request) -> Reply`
    and raise Rejected for what the provider refuses. `fail_next(*replies)` makes the
    next calls of the sending endpoint answer with these replies (after every check)."""

    send_paths: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.scripted: list[Reply] = []
        self.server = HTTPServer(self._respond)
        self.url = self.server.url

    def start(self) -> FakeProvider:
        self.server.start()
        return self

    def reset(self) -> None:
        """Forget requests, scripted replies and issued tokens (one server per session:
        stopping a server costs half a second)."""
        with self.server.lock:
            self.server.requests.clear()
        self.violations.clear()
        self.scripted.clear()
        self.reset_state()

    def reset_state(self) -> None:
        pass

    def stop(self) -> None:
        self.server.stop()

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.server.requests

    def calls(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.server.requests if r.path == path]

    def fail_next(self, *replies: Reply) -> None:
        self.scripted.extend(replies)

    def scripted_reply(self, req: RecordedRequest) -> Reply | None:
        if req.path in self.send_paths and self.scripted:
            return self.scripted.pop(0)
        return None

    def _respond(self, req: RecordedRequest) -> Reply:
        try:
            return self.handle(req)
        except Rejected as rejected:
            self.violations.append(f"{req.method} {req.path}: {rejected}")
            return rejected.reply

    def handle(self, req: RecordedRequest) -> Reply:
        raise NotImplementedError


def header(req: RecordedRequest, name: str) -> str:
    for key, value in req.headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def query1(req: RecordedRequest, name: str) -> str:
    return (req.query.get(name) or [""])[0]


def expect(condition: bool, problem: str, reply: Reply) -> None:
    if not condition:
        raise Rejected(problem, reply)


def json_of(req: RecordedRequest, reply: Reply) -> Any:
    expect(header(req, "Content-Type").startswith("application/json"),
           f"content type {header(req, 'Content-Type')!r} is not JSON", reply)
    try:
        return json.loads(req.body)
    except ValueError:
        raise Rejected("body is not JSON", reply)


class TokenIssuer:
    """Access tokens as the Chinese platforms issue them: numbered, expiring, revocable."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.counter = itertools.count(1)
        self.valid: set[str] = set()
        self.expired: set[str] = set()
        self.issued = 0

    def issue(self) -> str:
        token = f"{self.prefix}-{next(self.counter)}"
        self.valid.add(token)
        self.issued += 1
        return token

    def expire_all(self) -> None:
        self.expired |= self.valid
        self.valid.clear()


# --- DingTalk --------------------------------------------------------------------------

def dingtalk_robot_sign(secret: str, timestamp: str) -> str:
    """Documented: base64(HmacSHA256(key=secret, "<timestamp>\\n<secret>")), URL-encoded
    in the query (decoded again by the server's query parser)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(),
                      digestmod=hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FakeDingTalk(FakeProvider):
    """oapi.dingtalk.com: /robot/send, /gettoken, asyncsend_v2."""

    SEND = "/topapi/message/corpconversation/asyncsend_v2"
    send_paths = ("/robot/send", SEND)

    def __init__(self, *, robot_token: str = "robot-token", robot_secret: str = "",
                 app_key: str = "ding-key", app_secret: str = "ding-secret",
                 agent_id: int = 123456) -> None:
        super().__init__()
        self.robot_token = robot_token
        self.robot_secret = robot_secret
        self.app_key = app_key
        self.app_secret = app_secret
        self.agent_id = agent_id
        self.reset_state()

    def reset_state(self) -> None:
        self.tokens = TokenIssuer("ding")
        self.task_ids = itertools.count(256271667526)

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/robot/send?access_token={self.robot_token}"

    def handle(self, req: RecordedRequest) -> Reply:
        if req.path == "/robot/send":
            return self.robot(req)
        if req.path == "/gettoken":
            return self.gettoken(req)
        if req.path == self.SEND:
            return self.asyncsend(req)
        raise Rejected("unknown path", Reply(404, {"errcode": 404, "errmsg": "请求的URI地址不存在"}))

    def robot(self, req: RecordedRequest) -> Reply:
        bad = Reply(200, {"errcode": 300001, "errmsg": "token is not exist"})
        expect(req.method == "POST", "robot send must be POST", bad)
        expect(query1(req, "access_token") == self.robot_token, "wrong access_token", bad)
        if self.robot_secret:
            sign_fail = Reply(200, {"errcode": 310000, "errmsg": "sign not match, more: "
                                    "[https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"})
            timestamp = query1(req, "timestamp")
            expect(timestamp.isdigit(), "timestamp missing", sign_fail)
            expect(abs(int(timestamp) - time.time() * 1000) < 3600_000,
                   "timestamp more than an hour off (must be milliseconds)", sign_fail)
            expect(query1(req, "sign") == dingtalk_robot_sign(self.robot_secret, timestamp),
                   "sign does not match", sign_fail)
        param_error = Reply(200, {"errcode": 40035, "errmsg": "缺少参数 json"})
        body = json_of(req, param_error)
        msgtype = body.get("msgtype")
        expect(msgtype in ("text", "markdown", "actionCard", "link", "feedCard"),
               f"unknown msgtype {msgtype!r}", Reply(200, {"errcode": 40035,
                                                          "errmsg": "不合法的参数"}))
        section = body.get(msgtype) or {}
        if msgtype == "text":
            expect(bool(section.get("content")), "text.content missing", param_error)
        if msgtype == "markdown":
            expect(bool(section.get("title")) and bool(section.get("text")),
                   "markdown needs title and text", param_error)
        if msgtype == "actionCard":
            expect(bool(section.get("title")) and bool(section.get("text")),
                   "actionCard needs title and text", param_error)
            expect(bool(section.get("singleURL")) or bool(section.get("btns")),
                   "actionCard needs singleURL or btns", param_error)
        at = body.get("at") or {}
        expect(isinstance(at.get("atMobiles", []), list) and
               isinstance(at.get("atUserIds", []), list), "at lists must be arrays",
               param_error)
        return self.scripted_reply(req) or Reply(200, {"errcode": 0, "errmsg": "ok"})

    def gettoken(self, req: RecordedRequest) -> Reply:
        bad = Reply(200, {"errcode": 40089, "errmsg": "不合法的appKey或appSecret"})
        expect(req.method == "GET", "gettoken must be GET", bad)
        expect(query1(req, "appkey") == self.app_key and
               query1(req, "appsecret") == self.app_secret, "wrong appkey/appsecret", bad)
        return Reply(200, {"errcode": 0, "access_token": self.tokens.issue(), "errmsg": "ok",
                           "expires_in": 7200})

    def asyncsend(self, req: RecordedRequest) -> Reply:
        token = query1(req, "access_token")
        if token in self.tokens.expired:
            return Reply(200, {"errcode": 42001, "errmsg": "access_token超时"})
        if token not in self.tokens.valid:
            return Reply(200, {"errcode": 40014, "errmsg": "不合法的access_token"})
        param_error = Reply(200, {"errcode": 40035, "errmsg": "缺少参数"})
        expect(req.method == "POST", "asyncsend_v2 must be POST", param_error)
        body = json_of(req, param_error)
        expect(body.get("agent_id") == self.agent_id, "wrong agent_id",
               Reply(200, {"errcode": 40056, "errmsg": "不合法的agentid"}))
        users = body.get("userid_list")
        expect(isinstance(users, str) and bool(users), "userid_list must be a string",
               param_error)
        expect(len(users.split(",")) <= 100, "more than 100 users", param_error)
        msg = body.get("msg") or {}
        expect(msg.get("msgtype") in ("text", "image", "voice", "file", "link", "oa",
                                      "markdown", "action_card"), "bad msg.msgtype",
               param_error)
        expect(bool(msg.get(msg["msgtype"])), "msg body missing", param_error)
        return self.scripted_reply(req) or Reply(200, {
            "errcode": 0, "task_id": next(self.task_ids), "request_id": "4jzllmte0wau"})


def outbound(delivery_id: int = 1, **kwargs: Any):
    """An already-rendered message as the send pipeline hands it to an adapter."""
    from channels_app.channels.base import OutboundMessage

    kwargs.setdefault("subject", "Disk almost full")
    kwargs.setdefault("body", "db-1 is at 91%")
    return OutboundMessage(delivery_id=delivery_id, **kwargs)


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connection refused."""
    from tests.servers import free_port

    return f"http://127.0.0.1:{free_port()}"
