"""Browsers ask every site for /favicon.ico: the portal answers with its icon (it was a 404 on
every page load), open to anyone since the login and pay pages need it too."""

import io

from PIL import Image


async def test_the_favicon_is_served_to_anyone_in_the_sizes_tabs_use(anon):
    r = await anon.http.get("/favicon.ico")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/vnd.microsoft.icon"
    assert "max-age" in r.headers["cache-control"]
    icon = Image.open(io.BytesIO(r.content))
    assert icon.format == "ICO"
    assert {(16, 16), (32, 32)} <= set(icon.info["sizes"])
