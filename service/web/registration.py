"""Public pre-registration: sign up, verify the e-mail."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect

from service.queue import signup
from service.web.auth import channel_of, shopper_cookie
from service.web.forwarded import client_address
from service.web.params import AnyRequest, AppDeps
from service.web.ratelimit import SIGNUP_PER_ADDRESS, take


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
        await take(deps, launch_id, (SIGNUP_PER_ADDRESS, client_address(request)))
        return await signup.sign_up(
            deps,
            launch_id,
            data,
            channel=channel_of(request),
        )

    @get("/verify", operation_id="verifyEmail", summary="Follow the e-mailed verification link")
    async def verify(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str], token: FromQuery[str]
    ) -> Response[signup.Verified] | Redirect:
        if request.accept.best_match(["application/json", "text/html"]) == "text/html":
            # A person following the e-mailed link: the page says what happened.
            return Redirect(f"/launches/{launch_id}/verify", query_params={"token": token})
        done = await signup.verify(deps, launch_id, token, channel=channel_of(request))
        return Response(done, cookies=[shopper_cookie(deps, done.shopper_token)])
