"""The demo gym itself: its locations, plans and demo logins, and the names its members are
given. Shared by the small demo (demo.seed) and the bulk history (demo.bulk)."""

from __future__ import annotations

import random
import secrets
from decimal import Decimal

from piccolo.apps.user.tables import BaseUser

from portal.auth import create_staff
from portal.lib.phones import SAFARICOM, carrier_of
from tables.locations import Location
from tables.members import Plan
from tables.staff import Staff

FIRST_NAMES = [
    "Wanjiku", "Achieng", "Njeri", "Akinyi", "Wambui", "Atieno", "Nyambura", "Chebet", "Jepkosgei", "Mwende",
    "Kemunto", "Nafula", "Zawadi", "Amani", "Faith", "Mercy", "Grace", "Esther", "Purity", "Joy",
    "Kamau", "Otieno", "Mwangi", "Odhiambo", "Kiprono", "Kipchoge", "Mutua", "Onyango", "Wekesa", "Barasa",
    "Kariuki", "Ochieng", "Njoroge", "Kibet", "Omondi", "Muriuki", "Juma", "Baraka", "Brian", "Kevin",
    "Dennis", "Collins", "Victor", "Ian", "Hassan", "Abdi", "Salim", "Fatuma", "Halima", "Aisha",
]
LAST_NAMES = [
    "Kamau", "Otieno", "Mwangi", "Odhiambo", "Kiprono", "Wanjiru", "Mutua", "Onyango", "Wekesa", "Barasa",
    "Kariuki", "Ochieng", "Njoroge", "Kibet", "Omondi", "Muriuki", "Maina", "Gitau", "Chege", "Koech",
    "Rotich", "Langat", "Cheruiyot", "Kiplagat", "Nyaga", "Mugo", "Ndungu", "Owino", "Were", "Simiyu",
    "Wafula", "Makokha", "Okoth", "Ouma", "Kimani", "Njuguna", "Mohamed", "Ali", "Hussein", "Shah",
]
# Where demo phones come from (the digits after 254), by network. Members pay by M-Pesa, so
# nearly all have Safaricom lines: its old 07XX ranges most, 011X (opened 2020) less. Airtel's
# are for members who never pay by M-Pesa (portal.lib.phones tells the networks apart).
SAFARICOM_PREFIXES = ["70", "71", "72", "79", "74", "11"]
SAFARICOM_WEIGHTS = [20, 24, 24, 14, 6, 12]
AIRTEL_PREFIXES = ["73", "78", "75", "10"]


def demo_phone(rng: random.Random, used: set[str], network: str = SAFARICOM) -> str:
    """A realistic mobile number on `network` (Safaricom or Airtel), kept as the portal keeps
    phones and unique in the gym (phones identify Paybill payers); added to `used`."""
    while True:
        if network == SAFARICOM:
            prefix = rng.choices(SAFARICOM_PREFIXES, SAFARICOM_WEIGHTS)[0]
        else:
            prefix = rng.choice(AIRTEL_PREFIXES)
        number = "254" + prefix + f"{rng.randrange(10**7):07d}"
        # Some ranges inside these prefixes are another network's (0744, 0757): draw again.
        if number not in used and carrier_of(number) == network:
            used.add(number)
            return number


PLANS = [("Monthly", Decimal("3000"), 1), ("Quarterly", Decimal("8000"), 3), ("Annual", Decimal("30000"), 12)]
LOCATIONS = [("WST", "Westlands", "Sarit Centre, 2nd floor, Westlands", "0711 000 111"),
             ("KLM", "Kilimani", "Argwings Kodhek Rd, Kilimani", "0722 000 222")]


async def ensure_gym(currency: str) -> tuple[list[int], list[dict]]:
    """Locations, plans and the demo logins, each made once."""
    locations = await _locations()
    plans = await _plans(currency)
    if not await Staff.exists():
        for username, role, first, last, loc in DEMO_STAFF:
            await _demo_login(username, role, first, last, locations[loc] if loc is not None else None)
    return locations, plans


DEMO_STAFF = [("frontdesk", "front_desk", "Faith", "Wanjiru", 0), ("manager", "manager", "Paul", "Otieno", 0),
              ("admin", "admin", "Grace", "Akinyi", None)]


async def _demo_login(username: str, role: str, first: str, last: str, location_id: int | None) -> None:
    """Demo logins use password = user name, shorter than Piccolo allows for real accounts, so the
    hash is written directly. Real accounts go through create_staff's validation."""
    await create_staff(username, secrets.token_urlsafe(16), role, first_name=first, last_name=last, location_id=location_id)
    await BaseUser.update({BaseUser.password: BaseUser.hash_password(username)}).where(BaseUser.username == username)


async def _locations() -> list[int]:
    ids = []
    for code, name, address, phone in LOCATIONS:
        row = await Location.select(Location.id).where(Location.code == code).first()
        if not row:
            loc = Location(code=code, name=name, address=address, phone=phone)
            await loc.save()
            ids.append(loc.id)
        else:
            ids.append(row["id"])
    return ids


async def _plans(currency: str) -> list[dict]:
    out = []
    for name, price, months in PLANS:
        row = await Plan.select().where(Plan.name == name).first()
        if not row:
            await Plan.insert(Plan(name=name, price=price, currency=currency, duration_months=months))
            row = await Plan.select().where(Plan.name == name).first()
        out.append(row)
    return out


# The desk's day, for the sales the demo makes (by the app's rule, demo.sales, or in bulk,
# demo.extras): morning before work, lunch, evening as (first minute, last minute).
TIMES = [(6 * 60 + 30, 9 * 60), (12 * 60, 14 * 60), (17 * 60, 20 * 60 + 45)]
TIME_WEIGHTS = [35, 15, 50]
# What is bought: (item names and quantities, weight).
WALKIN_BASKETS = [({"Day pass": 1}, 55), ({"Day pass": 1, "Water": 1}, 20), ({"Day pass": 2}, 10),
                  ({"Water": 2}, 8), ({"Protein shake": 1}, 7)]
MEMBER_BASKETS = [({"PT session": 1}, 30), ({"PT pack of 10": 1}, 14), ({"Locker (per month)": 1}, 18),
                  ({"Protein shake": 1}, 20), ({"Water": 1, "Protein shake": 1}, 10), ({"Water": 3}, 8)]
