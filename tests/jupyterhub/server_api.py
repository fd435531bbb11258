"""A user's Jupyter server through the hub's proxy, as JupyterLab talks to it: a terminal (REST +
websocket, keys in and screen text out) and a kernel (REST + the kernel websocket protocol)."""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.request
import uuid
from typing import Any, Optional

import websocket


class UserServer:
    def __init__(self, hub_url: str, user: str, token: str) -> None:
        self.hub_url = hub_url
        self.user = user
        self.token = token
        self.base = f"/user/{user}/"

    def request(self, method: str, path: str, body: Optional[dict[str, Any]] = None,
                timeout: float = 30) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.hub_url + self.base + path, data=data,
                                         method=method, headers=self.headers())
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
        return json.loads(text) if text.strip() else None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}", "Content-Type": "application/json"}

    def websocket(self, path: str) -> websocket.WebSocket:
        url = self.hub_url.replace("http://", "ws://", 1) + self.base + path
        return websocket.create_connection(url, header=[f"Authorization: token {self.token}"],
                                           timeout=60, suppress_origin=True)

    def terminal(self) -> Terminal:
        name = self.request("POST", "api/terminals")["name"]
        return Terminal(self, name)

    def kernel(self, name: str) -> Kernel:
        model = self.request("POST", "api/kernels", {"name": name})
        return Kernel(self, model["id"])


class Terminal:
    """A JupyterLab terminal: what is typed goes to the shell, its screen output comes back.

    Each command gets a websocket of its own, as a browser tab reopening the terminal would: the
    server closes sockets that miss its pings (nobody answers them between our commands), while
    the shell behind lives on."""

    def __init__(self, server: UserServer, name: str) -> None:
        self.server = server
        self.name = name

    def run(self, command: str, timeout: float = 180) -> tuple[int, str]:
        """Type `command` and Enter; its exit code and what the screen showed meanwhile."""
        nonce = secrets.token_hex(4)  # the screen replays earlier commands' marks
        mark = re.compile(rf"__rc=(\d+)__{nonce}")
        socket = self.server.websocket(f"terminals/websocket/{self.name}")
        try:
            socket.send(json.dumps(["stdin", f"{command}; echo __rc=$?__{nonce}\r"]))
            screen = ""
            deadline = time.monotonic() + timeout
            while not (found := mark.search(screen)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{command!r} did not finish; screen:\n{screen}")
                socket.settimeout(remaining)
                message = json.loads(socket.recv())
                if message[0] == "stdout":
                    screen += message[1]
            return int(found.group(1)), screen[:found.start()]
        finally:
            socket.close()

    def close(self) -> None:
        self.server.request("DELETE", f"api/terminals/{self.name}")


class KernelError(RuntimeError):
    pass


class Kernel:
    """A kernel of the server, run cell by cell over its websocket (Jupyter message protocol)."""

    def __init__(self, server: UserServer, kernel_id: str) -> None:
        self.server = server
        self.id = kernel_id
        self.session = uuid.uuid4().hex
        self.socket = server.websocket(f"api/kernels/{kernel_id}/channels")

    def execute(self, code: str, timeout: float = 180) -> str:
        """Run a cell; its printed output and result as text. Raises KernelError on an error."""
        msg_id = uuid.uuid4().hex
        self.socket.send(json.dumps({
            "header": {"msg_id": msg_id, "username": self.server.user, "session": self.session,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        output: list[str] = []
        error: Optional[str] = None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cell did not finish: {code!r}; output: {''.join(output)}")
            self.socket.settimeout(remaining)
            message = json.loads(self.socket.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                output.append(content["text"])
            elif kind == "execute_result":
                output.append(content["data"].get("text/plain", "") + "\n")
            elif kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                break
        if error is not None:
            raise KernelError(f"{error}\noutput: {''.join(output)}")
        return "".join(output)

    def close(self) -> None:
        self.socket.close()
        self.server.request("DELETE", f"api/kernels/{self.id}")
