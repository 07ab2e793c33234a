"""Page objects: how a person uses each page, by data-testid and labels, waiting on responses."""

from __future__ import annotations


class LoginPage:
    def __init__(self, page):
        self.page = page

    async def login(self, username: str, password: str) -> None:
        await self.page.goto("/members")
        await self.page.get_by_label("User name").fill(username)
        await self.page.get_by_label("Password").fill(password)
        await self.page.get_by_role("button", name="Log in").click()
        await self.page.wait_for_url("**/members")


class MembersPage:
    def __init__(self, page):
        self.page = page
        self.search = page.get_by_test_id("member-search")

    async def type_search(self, text: str) -> None:
        async with self.page.expect_response(lambda r: "/members?q=" in r.url and r.request.headers.get("hx-request") == "true"):
            await self.search.press_sequentially(text, delay=40)
        # the last keystroke's response may still be on its way: wait until the count mentions it
        await self.page.get_by_test_id("result-count").filter(has_text=text).wait_for()
