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
import threading
import time
from typing import Any
from urllib.parse import parse_qs, quote_plus

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
        # Poll for shutdown often: stopping then takes milliseconds, not half a second.
        self.server.thread = threading.Thread(
            target=self.server.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.url = self.server.url

    def start(self) -> FakeProvider:
        self.server.start()
        return self

    def reset(self) -> None:
        """Forget requests, scripted replies and issued tokens (one server serves a
        whole session)."""
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
    expect(
        header(req, "Content-Type").startswith("application/json"),
        f"content type {header(req, 'Content-Type')!r} is not JSON",
        reply,
    )
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
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), digestmod=hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


class FakeDingTalk(FakeProvider):
    """oapi.dingtalk.com: /robot/send, /gettoken, asyncsend_v2."""

    SEND = "/topapi/message/corpconversation/asyncsend_v2"
    send_paths = ("/robot/send", SEND)

    def __init__(
        self,
        *,
        robot_token: str = "robot-token",
        robot_secret: str = "",
        app_key: str = "ding-key",
        app_secret: str = "ding-secret",
        agent_id: int = 123456,
    ) -> None:
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
        raise Rejected(
            "unknown path", Reply(404, {"errcode": 404, "errmsg": "请求的URI地址不存在"})
        )

    def robot(self, req: RecordedRequest) -> Reply:
        bad = Reply(200, {"errcode": 300001, "errmsg": "token is not exist"})
        expect(req.method == "POST", "robot send must be POST", bad)
        expect(query1(req, "access_token") == self.robot_token, "wrong access_token", bad)
        if self.robot_secret:
            sign_fail = Reply(
                200,
                {
                    "errcode": 310000,
                    "errmsg": "sign not match, more: "
                    "[https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]",
                },
            )
            timestamp = query1(req, "timestamp")
            expect(timestamp.isdigit(), "timestamp missing", sign_fail)
            expect(
                abs(int(timestamp) - time.time() * 1000) < 3600_000,
                "timestamp more than an hour off (must be milliseconds)",
                sign_fail,
            )
            expect(
                query1(req, "sign") == dingtalk_robot_sign(self.robot_secret, timestamp),
                "sign does not match",
                sign_fail,
            )
        param_error = Reply(200, {"errcode": 40035, "errmsg": "缺少参数 json"})
        body = json_of(req, param_error)
        msgtype = body.get("msgtype")
        expect(
            msgtype in ("text", "markdown", "actionCard", "link", "feedCard"),
            f"unknown msgtype {msgtype!r}",
            Reply(200, {"errcode": 40035, "errmsg": "不合法的参数"}),
        )
        section = body.get(msgtype) or {}
        if msgtype == "text":
            expect(bool(section.get("content")), "text.content missing", param_error)
        if msgtype == "markdown":
            expect(
                bool(section.get("title")) and bool(section.get("text")),
                "markdown needs title and text",
                param_error,
            )
        if msgtype == "actionCard":
            expect(
                bool(section.get("title")) and bool(section.get("text")),
                "actionCard needs title and text",
                param_error,
            )
            expect(
                bool(section.get("singleURL")) or bool(section.get("btns")),
                "actionCard needs singleURL or btns",
                param_error,
            )
        at = body.get("at") or {}
        expect(
            isinstance(at.get("atMobiles", []), list) and isinstance(at.get("atUserIds", []), list),
            "at lists must be arrays",
            param_error,
        )
        return self.scripted_reply(req) or Reply(200, {"errcode": 0, "errmsg": "ok"})

    def gettoken(self, req: RecordedRequest) -> Reply:
        bad = Reply(200, {"errcode": 40089, "errmsg": "不合法的appKey或appSecret"})
        expect(req.method == "GET", "gettoken must be GET", bad)
        expect(
            query1(req, "appkey") == self.app_key and query1(req, "appsecret") == self.app_secret,
            "wrong appkey/appsecret",
            bad,
        )
        return Reply(
            200,
            {"errcode": 0, "access_token": self.tokens.issue(), "errmsg": "ok", "expires_in": 7200},
        )

    def asyncsend(self, req: RecordedRequest) -> Reply:
        token = query1(req, "access_token")
        if token in self.tokens.expired:
            return Reply(200, {"errcode": 42001, "errmsg": "access_token超时"})
        if token not in self.tokens.valid:
            return Reply(200, {"errcode": 40014, "errmsg": "不合法的access_token"})
        param_error = Reply(200, {"errcode": 40035, "errmsg": "缺少参数"})
        expect(req.method == "POST", "asyncsend_v2 must be POST", param_error)
        body = json_of(req, param_error)
        expect(
            body.get("agent_id") == self.agent_id,
            "wrong agent_id",
            Reply(200, {"errcode": 40056, "errmsg": "不合法的agentid"}),
        )
        users = body.get("userid_list")
        expect(isinstance(users, str) and bool(users), "userid_list must be a string", param_error)
        expect(len(users.split(",")) <= 100, "more than 100 users", param_error)
        msg = body.get("msg") or {}
        expect(
            msg.get("msgtype")
            in ("text", "image", "voice", "file", "link", "oa", "markdown", "action_card"),
            "bad msg.msgtype",
            param_error,
        )
        expect(bool(msg.get(msg["msgtype"])), "msg body missing", param_error)
        return self.scripted_reply(req) or Reply(
            200, {"errcode": 0, "task_id": next(self.task_ids), "request_id": "4jzllmte0wau"}
        )


# --- WeCom -----------------------------------------------------------------------------


class FakeWeCom(FakeProvider):
    """qyapi.weixin.qq.com: robot webhook, cgi-bin/gettoken, cgi-bin/message/send."""

    ROBOT = "/cgi-bin/webhook/send"
    SEND = "/cgi-bin/message/send"
    send_paths = (ROBOT, SEND)

    def __init__(
        self,
        *,
        robot_key: str = "robot-key",
        corp_id: str = "ww-corp",
        corp_secret: str = "corp-secret",
        agent_id: int = 1000002,
        members: tuple[str, ...] = ("zhangsan", "lisi", "wangwu"),
    ) -> None:
        super().__init__()
        self.robot_key = robot_key
        self.corp_id = corp_id
        self.corp_secret = corp_secret
        self.agent_id = agent_id
        self.members = set(members)
        self.reset_state()

    def reset_state(self) -> None:
        self.tokens = TokenIssuer("wecom")
        self.msgids = itertools.count(1)

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{self.ROBOT}?key={self.robot_key}"

    def handle(self, req: RecordedRequest) -> Reply:
        if req.path == self.ROBOT:
            return self.robot(req)
        if req.path == "/cgi-bin/gettoken":
            return self.gettoken(req)
        if req.path == self.SEND:
            return self.message_send(req)
        raise Rejected("unknown path", Reply(404, "not found", {"Content-Type": "text/plain"}))

    def robot(self, req: RecordedRequest) -> Reply:
        expect(
            req.method == "POST",
            "robot send must be POST",
            Reply(200, {"errcode": 40008, "errmsg": "invalid message type"}),
        )
        expect(
            query1(req, "key") == self.robot_key,
            "wrong key",
            Reply(200, {"errcode": 93000, "errmsg": "invalid webhook url"}),
        )
        bad = Reply(200, {"errcode": 40008, "errmsg": "invalid message type"})
        body = json_of(req, bad)
        msgtype = body.get("msgtype")
        expect(
            msgtype
            in (
                "text",
                "markdown",
                "markdown_v2",
                "image",
                "news",
                "file",
                "voice",
                "template_card",
            ),
            f"unknown msgtype {msgtype!r}",
            bad,
        )
        section = body.get(msgtype)
        expect(isinstance(section, dict) and bool(section), f"{msgtype} body missing", bad)
        if msgtype in ("text", "markdown"):
            expect(
                bool(section.get("content")),
                "empty content",
                Reply(200, {"errcode": 44004, "errmsg": "empty content"}),
            )
        if msgtype == "text":
            for key in ("mentioned_list", "mentioned_mobile_list"):
                expect(isinstance(section.get(key, []), list), f"{key} must be a list", bad)
        if msgtype == "markdown":
            expect(
                "mentioned_mobile_list" not in section,
                "markdown does not take mentioned_mobile_list",
                bad,
            )
        return self.scripted_reply(req) or Reply(200, {"errcode": 0, "errmsg": "ok"})

    def gettoken(self, req: RecordedRequest) -> Reply:
        expect(
            req.method == "GET",
            "gettoken must be GET",
            Reply(200, {"errcode": 40001, "errmsg": "invalid credential"}),
        )
        expect(
            query1(req, "corpid") == self.corp_id,
            "wrong corpid",
            Reply(200, {"errcode": 40013, "errmsg": "invalid corpid"}),
        )
        expect(
            query1(req, "corpsecret") == self.corp_secret,
            "wrong corpsecret",
            Reply(200, {"errcode": 40001, "errmsg": "invalid credential"}),
        )
        return Reply(
            200,
            {"errcode": 0, "errmsg": "ok", "access_token": self.tokens.issue(), "expires_in": 7200},
        )

    def message_send(self, req: RecordedRequest) -> Reply:
        token = query1(req, "access_token")
        if token in self.tokens.expired:
            return Reply(200, {"errcode": 42001, "errmsg": "access_token expired"})
        if token not in self.tokens.valid:
            return Reply(200, {"errcode": 40014, "errmsg": "invalid access_token"})
        bad = Reply(200, {"errcode": 40008, "errmsg": "invalid message type"})
        expect(req.method == "POST", "message/send must be POST", bad)
        body = json_of(req, bad)
        expect(
            body.get("agentid") == self.agent_id,
            "wrong agentid",
            Reply(200, {"errcode": 40056, "errmsg": "invalid agentid"}),
        )
        msgtype = body.get("msgtype")
        expect(
            msgtype in ("text", "markdown", "textcard", "news", "mpnews", "image", "template_card"),
            f"unknown msgtype {msgtype!r}",
            bad,
        )
        expect(isinstance(body.get(msgtype), dict), f"{msgtype} body missing", bad)
        if msgtype == "textcard":
            card = body["textcard"]
            expect(
                all(card.get(k) for k in ("title", "description", "url")),
                "textcard needs title, description and url",
                bad,
            )
        users = str(body.get("touser") or "").split("|")
        expect(len(users) <= 1000, "more than 1000 users", bad)
        scripted = self.scripted_reply(req)
        if scripted:
            return scripted
        invalid = [u for u in users if u.lower() not in self.members]
        if len(invalid) == len(users):
            return Reply(200, {"errcode": 81013, "errmsg": "user & party & tag all invalid"})
        return Reply(
            200,
            {
                "errcode": 0,
                "errmsg": "ok",
                "invaliduser": "|".join(invalid),
                "invalidparty": "",
                "invalidtag": "",
                "unlicenseduser": "",
                "msgid": f"msg-{next(self.msgids)}",
                "response_code": "rc",
            },
        )


# --- Feishu ----------------------------------------------------------------------------


def feishu_bot_sign(secret: str, timestamp: str) -> str:
    """Documented: HmacSHA256 with "<timestamp>\\n<secret>" as the key over an empty
    message, then Base64."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", digestmod=hashlib.sha256).digest()).decode()


class FakeFeishu(FakeProvider):
    """open.feishu.cn custom bot: /open-apis/bot/v2/hook/<id>."""

    HOOK = "/open-apis/bot/v2/hook/6c1a8c3e-bot"
    send_paths = (HOOK,)

    def __init__(self, *, secret: str = "") -> None:
        super().__init__()
        self.secret = secret

    @property
    def webhook_url(self) -> str:
        return self.url + self.HOOK

    def handle(self, req: RecordedRequest) -> Reply:
        expect(
            req.path == self.HOOK,
            "unknown hook",
            Reply(
                200,
                {
                    "code": 19001,
                    "msg": "param invalid: incoming webhook access token invalid",
                    "data": {},
                },
            ),
        )
        bad = Reply(400, {"code": 9499, "msg": "Bad Request", "data": {}})
        expect(req.method == "POST", "hook must be POST", bad)
        body = json_of(req, bad)
        if self.secret:
            sign_fail = Reply(
                200,
                {
                    "code": 19021,
                    "msg": "sign match fail or timestamp is not within one hour from current time",
                    "data": {},
                },
            )
            timestamp = body.get("timestamp")
            expect(
                isinstance(timestamp, str) and timestamp.isdigit(),
                "timestamp must be a string of seconds",
                sign_fail,
            )
            expect(
                abs(int(timestamp) - time.time()) < 3600,
                "timestamp more than an hour off",
                sign_fail,
            )
            expect(
                body.get("sign") == feishu_bot_sign(self.secret, timestamp),
                "sign does not match",
                sign_fail,
            )
        msg_type = body.get("msg_type")
        expect(
            msg_type in ("text", "post", "image", "share_chat", "interactive"),
            f"unknown msg_type {msg_type!r}",
            bad,
        )
        if msg_type == "text":
            expect(bool((body.get("content") or {}).get("text")), "content.text missing", bad)
        if msg_type == "post":
            post = (body.get("content") or {}).get("post") or {}
            expect(len(post) == 1, "post needs one locale", bad)
            (locale_body,) = post.values()
            rows = locale_body.get("content")
            expect(
                isinstance(rows, list) and all(isinstance(r, list) for r in rows),
                "post content must be a list of lines",
                bad,
            )
            for row in rows:
                for node in row:
                    expect(
                        node.get("tag") in ("text", "a", "at", "img"),
                        f"bad post tag {node.get('tag')!r}",
                        bad,
                    )
        if msg_type == "interactive":
            expect(isinstance(body.get("card"), dict), "interactive needs card", bad)
        return self.scripted_reply(req) or Reply(200, {"code": 0, "msg": "success", "data": {}})


# --- WeChat official account -----------------------------------------------------------


class FakeWeChatMP(FakeProvider):
    """api.weixin.qq.com: cgi-bin/token and cgi-bin/message/template/send."""

    SEND = "/cgi-bin/message/template/send"
    send_paths = (SEND,)

    def __init__(
        self,
        *,
        app_id: str = "wx-app",
        app_secret: str = "wx-secret",
        followers: tuple[str, ...] = ("o-follower-1", "o-follower-2"),
        templates: tuple[str, ...] = ("tpl-shipped",),
    ) -> None:
        super().__init__()
        self.app_id = app_id
        self.app_secret = app_secret
        self.followers = set(followers)
        self.templates = set(templates)
        self.reset_state()

    def reset_state(self) -> None:
        self.tokens = TokenIssuer("wx")
        self.msgids = itertools.count(200228332)
        self.seen_client_ids: dict[tuple[str, str], int] = {}
        self.token_delay = 0.0
        self.expires_in = 7200

    def handle(self, req: RecordedRequest) -> Reply:
        if req.path == "/cgi-bin/token":
            expect(
                req.method == "GET",
                "token must be GET",
                Reply(200, {"errcode": 40002, "errmsg": "invalid grant_type"}),
            )
            expect(
                query1(req, "grant_type") == "client_credential",
                "wrong grant_type",
                Reply(200, {"errcode": 40002, "errmsg": "invalid grant_type"}),
            )
            expect(
                query1(req, "appid") == self.app_id,
                "wrong appid",
                Reply(200, {"errcode": 40013, "errmsg": "invalid appid"}),
            )
            expect(
                query1(req, "secret") == self.app_secret,
                "wrong secret",
                Reply(
                    200,
                    {
                        "errcode": 40001,
                        "errmsg": "invalid credential, access_token is invalid or not latest",
                    },
                ),
            )
            time.sleep(self.token_delay)
            # Issuing a new token revokes the previous one (after a grace period that
            # this fake leaves out).
            self.tokens.expire_all()
            return Reply(200, {"access_token": self.tokens.issue(), "expires_in": self.expires_in})
        if req.path == self.SEND:
            return self.template_send(req)
        raise Rejected("unknown path", Reply(404, "", {"Content-Type": "text/plain"}))

    def template_send(self, req: RecordedRequest) -> Reply:
        token = query1(req, "access_token")
        if token in self.tokens.expired:
            return Reply(200, {"errcode": 42001, "errmsg": "access_token expired"})
        if token not in self.tokens.valid:
            return Reply(
                200,
                {
                    "errcode": 40001,
                    "errmsg": "invalid credential, access_token is invalid or not latest",
                },
            )
        bad = Reply(200, {"errcode": 47001, "errmsg": "data format error"})
        expect(req.method == "POST", "template/send must be POST", bad)
        body = json_of(req, bad)
        expect(
            body.get("template_id") in self.templates,
            "unknown template_id",
            Reply(200, {"errcode": 40037, "errmsg": "invalid template_id"}),
        )
        data = body.get("data")
        expect(
            isinstance(data, dict)
            and all(isinstance(v, dict) and isinstance(v.get("value"), str) for v in data.values()),
            'data must map fields to {"value": string}',
            bad,
        )
        scripted = self.scripted_reply(req)
        if scripted:
            return scripted
        if body.get("touser") not in self.followers:
            return Reply(200, {"errcode": 43004, "errmsg": "require subscribe"})
        key = (body["touser"], str(body.get("client_msg_id") or ""))
        if key[1] and key in self.seen_client_ids:
            # A repeat of the same client_msg_id is not delivered again.
            return Reply(200, {"errcode": 0, "errmsg": "ok", "msgid": self.seen_client_ids[key]})
        msgid = next(self.msgids)
        if key[1]:
            self.seen_client_ids[key] = msgid
        return Reply(200, {"errcode": 0, "errmsg": "ok", "msgid": msgid})


# --- Alibaba Cloud SMS -----------------------------------------------------------------


def aliyun_percent_encode(value: str) -> str:
    """The documented recipe: form-encode in UTF-8, then '+' -> %20, '*' -> %2A and
    %7E -> '~'."""
    return (
        quote_plus(value, encoding="utf-8")
        .replace("+", "%20")
        .replace("*", "%2A")
        .replace("%7E", "~")
    )


def aliyun_rpc_signature(secret: str, method: str, params: dict[str, str]) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    canonical = "&".join(f"{aliyun_percent_encode(k)}={aliyun_percent_encode(v)}" for k, v in pairs)
    string_to_sign = "&".join(
        [method, aliyun_percent_encode("/"), aliyun_percent_encode(canonical)]
    )
    digest = hmac.new(
        (secret + "&").encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


class FakeAliyunSMS(FakeProvider):
    """dysmsapi.aliyuncs.com RPC endpoint: SendSms and QuerySmsSign (2017-05-25)."""

    send_paths = ("/",)

    def __init__(
        self,
        *,
        key_id: str = "LTAI-test",
        key_secret: str = "aliyun-secret",
        signs: tuple[str, ...] = ("msgcenter",),
        templates: tuple[str, ...] = ("SMS_15305",),
    ) -> None:
        super().__init__()
        self.key_id = key_id
        self.key_secret = key_secret
        self.signs = set(signs)
        self.templates = set(templates)
        self.reset_state()

    def reset_state(self) -> None:
        self.nonces: set[str] = set()
        self.biz_ids = itertools.count(900619746936498440)

    @staticmethod
    def error(status: int, code: str, message: str) -> Reply:
        return Reply(
            status,
            {
                "RequestId": "F655A8D5-B967-440B-8683-DAD6FF8DE990",
                "HostId": "dysmsapi.aliyuncs.com",
                "Code": code,
                "Message": message,
                "Recommend": "https://api.aliyun.com",
            },
        )

    def handle(self, req: RecordedRequest) -> Reply:
        expect(
            req.path == "/",
            "RPC calls go to /",
            self.error(404, "InvalidAction.NotFound", "Specified api is not found"),
        )
        expect(
            header(req, "Content-Type").startswith("application/x-www-form-urlencoded"),
            "POST parameters must be form-encoded",
            self.error(400, "MissingParameter", "missing Action"),
        )
        params = {k: v[0] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()}
        for name in (
            "AccessKeyId",
            "Action",
            "Format",
            "RegionId",
            "SignatureMethod",
            "SignatureNonce",
            "SignatureVersion",
            "Timestamp",
            "Version",
            "Signature",
        ):
            expect(
                name in params,
                f"missing {name}",
                self.error(400, f"Missing{name}", f"{name} is mandatory for this action."),
            )
        expect(
            params["Version"] == "2017-05-25",
            "wrong Version",
            self.error(400, "InvalidVersion", "Specified parameter Version is not valid."),
        )
        expect(
            params["SignatureMethod"] == "HMAC-SHA1" and params["SignatureVersion"] == "1.0",
            "wrong signature method",
            self.error(400, "InvalidSignatureMethod", "Specified signature method is not valid."),
        )
        expect(
            params["Format"] == "JSON",
            "Format must be JSON",
            self.error(400, "InvalidParameter", "Format"),
        )
        try:
            sent = time.mktime(time.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ"))
            skew = abs(sent - time.mktime(time.gmtime()))
        except ValueError:
            skew = 1e9
        expect(
            skew < 900,
            "Timestamp is not UTC ISO 8601 within 15 minutes",
            self.error(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            ),
        )
        expect(
            params["SignatureNonce"] not in self.nonces,
            "SignatureNonce reused",
            self.error(400, "SignatureNonceUsed", "Specified signature nonce was used already."),
        )
        self.nonces.add(params["SignatureNonce"])
        expect(
            params["AccessKeyId"] == self.key_id,
            "unknown AccessKeyId",
            self.error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."),
        )
        expect(
            params["Signature"] == aliyun_rpc_signature(self.key_secret, req.method, params),
            "Signature does not match",
            self.error(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation.",
            ),
        )
        if params["Action"] == "SendSms":
            return self.send_sms(req, params)
        if params["Action"] == "QuerySmsSign":
            expect(
                params.get("SignName") in self.signs,
                "unknown sign",
                Reply(200, {"Code": "isv.SMS_SIGN_ILLEGAL", "Message": "签名不合法"}),
            )
            return Reply(
                200,
                {
                    "Code": "OK",
                    "Message": "OK",
                    "SignName": params["SignName"],
                    "SignStatus": 1,
                    "CreateDate": "2019-01-08 16:44:13",
                    "RequestId": "0A974B78-02BF-4C79-ADF3-90CFBA1B55B1",
                },
            )
        raise Rejected(
            "unknown Action",
            self.error(404, "InvalidAction.NotFound", "Specified api is not found"),
        )

    def send_sms(self, req: RecordedRequest, params: dict[str, str]) -> Reply:
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            expect(
                bool(params.get(name)),
                f"missing {name}",
                self.error(400, "MissingParameter", f"{name} is mandatory"),
            )
        expect(
            params["SignName"] in self.signs,
            "unknown SignName",
            Reply(
                200,
                {
                    "Code": "isv.SMS_SIGNATURE_ILLEGAL",
                    "Message": "签名不合法(不存在或被拉黑)",
                    "RequestId": "r1",
                },
            ),
        )
        expect(
            params["TemplateCode"] in self.templates,
            "unknown TemplateCode",
            Reply(
                200,
                {
                    "Code": "isv.SMS_TEMPLATE_ILLEGAL",
                    "Message": "模板不合法(不存在或被拉黑)",
                    "RequestId": "r2",
                },
            ),
        )
        try:
            template_params = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            template_params = None
        expect(
            isinstance(template_params, dict),
            "TemplateParam is not a JSON object",
            Reply(
                200,
                {"Code": "isv.INVALID_JSON_PARAM", "Message": "JSON参数不合法", "RequestId": "r3"},
            ),
        )
        scripted = self.scripted_reply(req)
        if scripted:
            return scripted
        if not params["PhoneNumbers"].lstrip("+").isdigit():
            return Reply(
                200,
                {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号", "RequestId": "r4"},
            )
        return Reply(
            200,
            {
                "Message": "OK",
                "RequestId": "F655A8D5-B967-440B-8683-DAD6FF8DE990",
                "BizId": f"{next(self.biz_ids)}^0",
                "Code": "OK",
            },
        )


# --- Tencent Cloud SMS -----------------------------------------------------------------


def tencent_tc3_signature(
    secret_key: str,
    *,
    method: str,
    canonical_headers: str,
    signed_headers: str,
    payload: bytes,
    timestamp: int,
    service: str = "sms",
) -> str:
    """Documented TC3-HMAC-SHA256: canonical request, string to sign over its SHA-256,
    signing key derived from "TC3" + SecretKey through date, service and "tc3_request"."""
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    canonical_request = (
        f"{method}\n/\n\n{canonical_headers}\n{signed_headers}\n"
        f"{hashlib.sha256(payload).hexdigest()}"
    )
    string_to_sign = (
        f"TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n"
        f"{hashlib.sha256(canonical_request.encode('utf-8')).hexdigest()}"
    )

    def sign(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

    secret_date = sign(("TC3" + secret_key).encode("utf-8"), date)
    secret_signing = sign(sign(secret_date, service), "tc3_request")
    return hmac.new(secret_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


class FakeTencentSMS(FakeProvider):
    """sms.tencentcloudapi.com (API 3.0, version 2021-01-11): SendSms and
    SendStatusStatistics."""

    send_paths = ("/",)

    def __init__(
        self,
        *,
        secret_id: str = "AKID-test",
        secret_key: str = "tencent-key",
        sdk_app_id: str = "1400006666",
        templates: tuple[str, ...] = ("449739",),
        signs: tuple[str, ...] = ("msgcenter",),
    ) -> None:
        super().__init__()
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.templates = set(templates)
        self.signs = set(signs)
        self.invalid_numbers: set[str] = set()
        self.limited_numbers: set[str] = set()
        self.reset_state()

    def reset_state(self) -> None:
        self.serials = itertools.count(1)
        self.invalid_numbers = set()
        self.limited_numbers = set()

    @staticmethod
    def error(code: str, message: str) -> Reply:
        return Reply(
            200,
            {
                "Response": {
                    "Error": {"Code": code, "Message": message},
                    "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279",
                }
            },
        )

    def handle(self, req: RecordedRequest) -> Reply:
        expect(
            req.method == "POST" and req.path == "/",
            "API 3.0 calls are POST /",
            self.error("UnsupportedProtocol", "HTTP method or path not supported"),
        )
        content_type = header(req, "Content-Type")
        expect(
            content_type == "application/json; charset=utf-8",
            "wrong Content-Type",
            self.error("InvalidParameter", "Content-Type"),
        )
        action = header(req, "X-TC-Action")
        expect(
            header(req, "X-TC-Version") == "2021-01-11",
            "wrong X-TC-Version",
            self.error("NoSuchVersion", "The request version does not exist."),
        )
        expect(
            bool(header(req, "X-TC-Region")),
            "missing X-TC-Region",
            self.error("MissingParameter", "X-TC-Region"),
        )
        timestamp = header(req, "X-TC-Timestamp")
        expect(
            timestamp.isdigit() and abs(int(timestamp) - time.time()) < 300,
            "X-TC-Timestamp missing or more than 5 minutes off",
            self.error("AuthFailure.SignatureExpire", "Signature expired."),
        )
        auth = header(req, "Authorization")
        expect(
            auth.startswith("TC3-HMAC-SHA256 "),
            "wrong algorithm",
            self.error("AuthFailure.InvalidAuthorization", "Authorization is invalid."),
        )
        fields = dict(
            part.strip().split("=", 1) for part in auth[len("TC3-HMAC-SHA256 ") :].split(",")
        )
        credential = fields.get("Credential", "").split("/")
        expect(
            len(credential) == 4 and credential[2:] == ["sms", "tc3_request"],
            "bad Credential scope",
            self.error("AuthFailure.InvalidAuthorization", "Credential is invalid."),
        )
        expect(
            credential[0] == self.secret_id,
            "unknown SecretId",
            self.error("AuthFailure.SecretIdNotFound", "The SecretId is not found."),
        )
        expect(
            credential[1] == time.strftime("%Y-%m-%d", time.gmtime(int(timestamp))),
            "Credential date is not the UTC date of X-TC-Timestamp",
            self.error("AuthFailure.InvalidAuthorization", "Credential date is invalid."),
        )
        signed_headers = fields.get("SignedHeaders", "")
        expect(
            "host" in signed_headers.split(";") and "content-type" in signed_headers.split(";"),
            "content-type and host must be signed",
            self.error("AuthFailure.InvalidAuthorization", "SignedHeaders is invalid."),
        )
        canonical_headers = "".join(
            f"{name}:{header(req, name).strip().lower()}\n" for name in signed_headers.split(";")
        )
        expected = tencent_tc3_signature(
            self.secret_key,
            method="POST",
            canonical_headers=canonical_headers,
            signed_headers=signed_headers,
            payload=req.body,
            timestamp=int(timestamp),
        )
        expect(
            fields.get("Signature") == expected,
            "signature does not match",
            self.error(
                "AuthFailure.SignatureFailure",
                "The provided credentials could "
                "not be validated. Please check your signature is correct.",
            ),
        )
        try:
            body = json.loads(req.body)
        except ValueError:
            raise Rejected("body is not JSON", self.error("InvalidParameter", "body"))
        if action == "SendSms":
            return self.send_sms(req, body)
        if action == "SendStatusStatistics":
            expect(
                body.get("SmsSdkAppId") == self.sdk_app_id,
                "wrong SmsSdkAppId",
                self.error("FailedOperation.MissingSignatureList", "SmsSdkAppId"),
            )
            expect(
                len(str(body.get("BeginTime", ""))) == 10,
                "BeginTime must be YYYYMMDDHH",
                self.error("InvalidParameterValue.InvalidStartTime", "BeginTime"),
            )
            return Reply(
                200,
                {
                    "Response": {
                        "SendStatusStatistics": {
                            "FeeCount": 0,
                            "RequestCount": 0,
                            "RequestSuccessCount": 0,
                        },
                        "RequestId": "r-stat",
                    }
                },
            )
        raise Rejected(
            f"unknown action {action!r}", self.error("InvalidAction", "The action does not exist.")
        )

    def send_sms(self, req: RecordedRequest, body: dict[str, Any]) -> Reply:
        numbers = body.get("PhoneNumberSet")
        expect(
            isinstance(numbers, list) and 0 < len(numbers) <= 200,
            "PhoneNumberSet must hold 1..200 numbers",
            self.error("LimitExceeded.PhoneNumberCountLimit", "too many numbers"),
        )
        expect(
            body.get("SmsSdkAppId") == self.sdk_app_id,
            "wrong SmsSdkAppId",
            self.error("FailedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId verify fail"),
        )
        expect(
            body.get("TemplateId") in self.templates,
            "unknown TemplateId",
            self.error(
                "FailedOperation.TemplateIncorrectOrUnapproved", "template unapproved or not exist"
            ),
        )
        params = body.get("TemplateParamSet", [])
        expect(
            isinstance(params, list) and all(isinstance(p, str) for p in params),
            "TemplateParamSet must be a list of strings",
            self.error(
                "InvalidParameterValue.TemplateParameterFormatError",
                "template parameter format error",
            ),
        )
        if any(not str(n).startswith("+") or str(n).startswith("+86") for n in numbers):
            expect(
                body.get("SignName") in self.signs,
                "mainland numbers need a known SignName",
                self.error(
                    "FailedOperation.SignatureIncorrectOrUnapproved",
                    "signature unapproved or not exist",
                ),
            )
        scripted = self.scripted_reply(req)
        if scripted:
            return scripted
        statuses = []
        for number in numbers:
            e164 = number if number.startswith("+") else f"+86{number}"
            if number in self.invalid_numbers:
                code, message = (
                    "InvalidParameterValue.IncorrectPhoneNumber",
                    "incorrect phone number",
                )
            elif number in self.limited_numbers:
                code, message = (
                    "LimitExceeded.PhoneNumberThirtySecondLimit",
                    "the number of SMS messages sent from a single mobile number "
                    "within 30 seconds exceeds the upper limit",
                )
            else:
                code, message = "Ok", "send success"
            statuses.append(
                {
                    "SerialNo": f"2640:{next(self.serials)}" if code == "Ok" else "",
                    "PhoneNumber": e164,
                    "Fee": 1 if code == "Ok" else 0,
                    "SessionContext": "",
                    "Code": code,
                    "Message": message,
                    "IsoCode": "CN",
                }
            )
        return Reply(
            200,
            {
                "Response": {
                    "SendStatusSet": statuses,
                    "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279",
                }
            },
        )


# --- Twilio ----------------------------------------------------------------------------


class FakeTwilio(FakeProvider):
    """api.twilio.com 2010-04-01: Messages.json and the account resource."""

    def __init__(
        self, *, account_sid: str = "AC" + "1" * 32, auth_token: str = "twilio-token"
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages_path = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.send_paths = (self.messages_path,)
        self.reset_state()

    def reset_state(self) -> None:
        self.sids = itertools.count(1)

    @staticmethod
    def error(status: int, code: int, message: str) -> Reply:
        return Reply(
            status,
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    def handle(self, req: RecordedRequest) -> Reply:
        expected = (
            "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        )
        expect(
            header(req, "Authorization") == expected,
            "basic auth does not match",
            self.error(401, 20003, "Authenticate"),
        )
        if req.path == f"/2010-04-01/Accounts/{self.account_sid}.json" and req.method == "GET":
            return Reply(
                200,
                {
                    "sid": self.account_sid,
                    "friendly_name": "msgcenter test",
                    "status": "active",
                    "type": "Full",
                },
            )
        expect(
            req.path == self.messages_path and req.method == "POST",
            "unknown resource",
            self.error(404, 20404, "The requested resource was not found"),
        )
        expect(
            header(req, "Content-Type").startswith("application/x-www-form-urlencoded"),
            "parameters must be form-encoded",
            self.error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required."),
        )
        form = {k: v[0] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()}
        expect(
            bool(form.get("From")) != bool(form.get("MessagingServiceSid")),
            "exactly one of From and MessagingServiceSid",
            self.error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required."),
        )
        expect(
            bool(form.get("Body")),
            "Body missing",
            self.error(400, 21602, "Message body is required."),
        )
        scripted = self.scripted_reply(req)
        if scripted:
            return scripted
        to = form.get("To", "")
        if not (to.startswith("+") and to[1:].isdigit()):
            return self.error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        sid = f"SM{next(self.sids):032x}"
        return Reply(
            201,
            {
                "sid": sid,
                "status": "queued",
                "to": to,
                "from": form.get("From"),
                "body": form["Body"],
                "account_sid": self.account_sid,
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_segments": "1",
                "error_code": None,
                "error_message": None,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
        )


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """Documented: the full URL, then each POST parameter's name and value appended in
    alphabetical order of names; HMAC-SHA1 with the auth token; Base64."""
    data = url
    for name in sorted(params):
        data += name + params[name]
    return base64.b64encode(
        hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    ).decode()


# --- Slack -----------------------------------------------------------------------------


class FakeSlack(FakeProvider):
    """hooks.slack.com incoming webhook: answers `ok` or an error word, as plain text."""

    HOOK = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
    send_paths = (HOOK,)

    @property
    def webhook_url(self) -> str:
        return self.url + self.HOOK

    @staticmethod
    def text(status: int, word: str) -> Reply:
        return Reply(status, word, {"Content-Type": "text/html"})

    def handle(self, req: RecordedRequest) -> Reply:
        expect(req.path == self.HOOK, "unknown hook", self.text(404, "no_service"))
        expect(req.method == "POST", "must be POST", self.text(405, "invalid_method"))
        body = json_of(req, self.text(400, "invalid_payload"))
        expect(
            isinstance(body, dict), "payload must be an object", self.text(400, "invalid_payload")
        )
        expect(
            bool(body.get("text")) or bool(body.get("blocks")), "no text", self.text(400, "no_text")
        )
        if "blocks" in body:
            expect(
                isinstance(body["blocks"], list)
                and all(isinstance(b, dict) and b.get("type") for b in body["blocks"]),
                "blocks must be typed objects",
                self.text(400, "invalid_blocks"),
            )
        return self.scripted_reply(req) or self.text(200, "ok")


# --- Apprise json:// endpoint ----------------------------------------------------------


class FakeJSONEndpoint(FakeProvider):
    """Any HTTP endpoint an Apprise `json://` URL posts to: checks Apprise's JSON
    notification shape and answers 200."""

    PATH = "/notify"
    send_paths = (PATH,)

    def apprise_url(self, path: str = PATH) -> str:
        return f"json://127.0.0.1:{self.server.port}{path}"

    def handle(self, req: RecordedRequest) -> Reply:
        expect(req.path == self.PATH, "unknown path", Reply(404, {"error": "not found"}))
        expect(req.method == "POST", "must be POST", Reply(405, {"error": "method"}))
        body = json_of(req, Reply(400, {"error": "json"}))
        expect(
            {"version", "title", "message", "type"} <= set(body),
            "not an Apprise JSON notification",
            Reply(400, {"error": "shape"}),
        )
        return self.scripted_reply(req) or Reply(200, {"received": True})


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
