"""/docs and /redoc render the whole API from the server's own vendored assets: the browser asks no
other host for anything (the fans fixture aborts and reports any such request) and logs no error."""

from __future__ import annotations

import httpx

from tests.browser.conftest import FanFactory


async def test_swagger_ui_renders_every_operation_from_the_server_alone(fans: FanFactory) -> None:
    fan = await fans()
    await fan.goto("/docs")
    await fan.page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "Boxoffice" in await fan.page.inner_text(".swagger-ui .info .title")
    operations = await fan.page.locator(".opblock").count()
    async with httpx.AsyncClient(base_url=fan.base) as client:
        spec = (await client.get("/openapi.json")).json()
        page = await client.get("/docs")
        asset = await client.get("/docs-assets/swagger-ui-5.35.0/swagger-ui-bundle.js")
    documented = sum(len(methods) for methods in spec["paths"].values())
    assert operations >= documented > 20  # an operation with two tags is listed under each
    assert "cdn." not in page.text and "https://" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
    await fan.shot("docs")


async def test_redoc_renders_from_the_server_alone(fans: FanFactory) -> None:
    fan = await fans()
    await fan.goto("/redoc")
    await fan.page.wait_for_selector("h1", timeout=30_000)
    assert "Boxoffice" in await fan.page.inner_text("h1")
    await fan.page.wait_for_function("document.body.innerText.includes('/api/queue')", timeout=30_000)
    await fan.shot("redoc")
