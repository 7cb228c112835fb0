"""E-licenses (电子证照, SPEC 4): issue, show by 亮证码, fetch certificate-free, verify.

Deliberately empty of imports: adapters import ``gateway.licenses.status`` and must not
pull in the service (and aiohttp) with it. The entry points are
``gateway.licenses.service.LicenseService`` (verification, fetch, status, QR minting),
``gateway.licenses.issuing`` (what only the issuing node does) and
``gateway.licenses.license_jws.sign_license``; ``docs/licenses.md`` maps every module.
"""
