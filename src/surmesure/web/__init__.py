"""The web placements a shop's pages fill in the visitor's browser.

A page includes ``/web/surmesure.js`` (``static/surmesure.js``, served as
:mod:`surmesure.web.script` says) with a public key of the ``web`` scope; the script asks
``/v1/web/decide`` once for every placement of the page and reports views and clicks to
``/v1/web/events`` (:mod:`surmesure.api.web`). Who the visitor is comes from
:mod:`surmesure.web.identity` alone, never from the page's words; what the page is answered,
from :mod:`surmesure.web.answer`; its events, from :mod:`surmesure.web.events`; the demo
shop's page, from :mod:`surmesure.web.shop`.
"""
