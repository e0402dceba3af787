"""Public pre-registration: sign up, verify the e-mail."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, FromQuery, JSONBody

from service.queue import signup
from service.web.auth import SHOPPER_COOKIE, channel_of
from service.web.params import AnyRequest, AppDeps
from service.web.ratelimit import SIGNUP_PER_ADDRESS, client_address, limiter_of


class RegistrationController(Controller):
    path = "/api/launches/{launch_id:str}"
    tags = ["registration"]

    @post(
        "/registrations",
        operation_id="signUp",
        status_code=202,
        summary="Register for a launch; a verification link is e-mailed",
    )
    async def sign_up(
        self,
        request: AnyRequest,
        deps: AppDeps,
        launch_id: FromPath[str],
        data: JSONBody[signup.SignUp],
    ) -> signup.SignUpAccepted:
        limiter_of(request).check(SIGNUP_PER_ADDRESS, client_address(request))
        return await signup.sign_up(
            deps,
            launch_id,
            data,
            channel=channel_of(request),
            base_url=str(request.base_url).rstrip("/"),
        )

    @get("/verify", operation_id="verifyEmail", summary="Follow the e-mailed verification link")
    async def verify(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str], token: FromQuery[str]
    ) -> Response[signup.Verified]:
        done = await signup.verify(deps, launch_id, token, channel=channel_of(request))
        cookie = Cookie(
            key=SHOPPER_COOKIE,
            value=done.shopper_token,
            path="/",
            httponly=True,
            samesite="lax",
            max_age=deps.settings.shopper_token_ttl_seconds,
        )
        return Response(done, cookies=[cookie])
