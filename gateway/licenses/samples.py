"""Demo licenses of every city: realistic, deterministic, and valid to the check digit.

Each city of the demo network gets eleven licenses of the four catalog types — 营业执照
(business licence), 食品经营许可证 (food business licence), 中华人民共和国残疾人证
(disability certificate) and 不动产权证书 (real-estate title certificate) — with
plausible Chinese names, resident identity numbers and unified social credit codes
registered in the city's own districts, addresses on real streets, and the
type-specific ``data`` fields the catalog discloses. Two are expired (a business
licence whose 营业期限 ended, a food licence after its five years), one is revoked and
one suspended, so every verdict can be shown on real data.

Everything is derived from the node id with a seeded generator: the same city always
gets the same documents and identifiers (only the signatures differ, ECDSA being
randomised), so docs and tests can name them. Tongban nodes seed them through
``gateway.demo_data``; the legacy-partner simulators call ``sample_licenses`` and
``gateway.licenses.license_jws.sign_license`` to serve their own city's licenses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from gateway.config import NodeConfig
from gateway.licenses.document import ID_TYPE_RESIDENT, ID_TYPE_USCC
from gateway.licenses.identifiers import make_license_identifier, make_resident_id, make_uscc
from gateway.licenses.status import LicenseStatus, StatusValue

__all__ = [
    "BUSINESS_LICENCE",
    "DISABILITY_CERTIFICATE",
    "FOOD_BUSINESS_LICENCE",
    "REAL_ESTATE_CERTIFICATE",
    "SampleLicense",
    "sample_documents",
    "sample_licenses",
    "sample_statuses",
]

BUSINESS_LICENCE = ("11100000MB0341032Y001", "营业执照")
FOOD_BUSINESS_LICENCE = ("11100000MB0341032Y015", "食品经营许可证")
DISABILITY_CERTIFICATE = ("111000000000179619001", "中华人民共和国残疾人证")
REAL_ESTATE_CERTIFICATE = ("11100000MB1742030G001", "不动产权证书")


@dataclass(frozen=True)
class _City:
    province: str
    short: str  # the province's one-character name, used in real-estate numbers
    city: str
    districts: tuple[tuple[str, str], ...]  # (GB/T 2260 code, name)
    roads: tuple[str, ...]


_CITIES: dict[str, _City] = {
    "360800": _City(
        "江西省",
        "赣",
        "吉安市",
        (("360802", "吉州区"), ("360803", "青原区"), ("360821", "吉安县"), ("360881", "井冈山市")),
        ("井冈山大道", "阳明西路", "庐陵大道", "城南大道", "吉州大道"),
    ),
    "330800": _City(
        "浙江省",
        "浙",
        "衢州市",
        (("330802", "柯城区"), ("330803", "衢江区"), ("330825", "龙游县"), ("330881", "江山市")),
        ("荷花中路", "三衢路", "世纪大道", "花园东大道", "衢化路"),
    ),
    "350800": _City(
        "福建省",
        "闽",
        "龙岩市",
        (("350802", "新罗区"), ("350803", "永定区"), ("350821", "长汀县"), ("350881", "漳平市")),
        ("九一南路", "龙岩大道", "华莲路", "西安北路", "登高西路"),
    ),
    "430200": _City(
        "湖南省",
        "湘",
        "株洲市",
        (("430202", "荷塘区"), ("430203", "芦淞区"), ("430204", "石峰区"), ("430211", "天元区")),
        ("神农大道", "长江北路", "建设中路", "新华西路", "珠江南路"),
    ),
    "150500": _City(
        "内蒙古自治区",
        "蒙",
        "通辽市",
        (
            ("150502", "科尔沁区"),
            ("150523", "开鲁县"),
            ("150524", "库伦旗"),
            ("150581", "霍林郭勒市"),
        ),
        ("霍林河大街", "建国路", "民主路", "红星大街", "和平路"),
    ),
}

_FAMILY = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕"
    "丁任沈姚卢钟姜崔谭廖范汪陆金石贾夏邱方侯邹熊孟秦白江薛尹段雷黎史龙陶贺顾毛郝龚邵万钱严武孔汤"
)
_MALE = (
    "建国", "志强", "伟", "磊", "勇", "军", "杰", "涛", "明", "超", "刚", "辉", "浩", "俊",
    "建华", "晓东", "国强", "宇航", "嘉豪", "鹏飞", "文博", "海波", "永红", "德明",
)  # fmt: skip
_FEMALE = (
    "秀英", "丽华", "芳", "敏", "静", "艳", "娟", "秀兰", "霞", "桂英", "玉兰", "婷", "红梅",
    "海燕", "春梅", "亚楠", "欣怡", "佳怡", "子涵", "慧敏", "雪梅", "丽娟",
)  # fmt: skip
_BRANDS = (
    "恒泰",
    "宏远",
    "鑫源",
    "华兴",
    "金诚",
    "瑞丰",
    "嘉禾",
    "永盛",
    "天和",
    "润达",
    "锦程",
    "汇通",
)
_TRADES: tuple[tuple[str, str], ...] = (
    (
        "商贸",
        "一般项目：日用百货销售；五金产品零售；建筑材料销售；办公用品销售（除依法须经批准的项目外，"
        "凭营业执照依法自主开展经营活动）。",
    ),
    (
        "科技",
        "一般项目：技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广；软件开发；信息系统"
        "集成服务（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。",
    ),
    (
        "物流",
        "一般项目：普通货物仓储服务（不含危险化学品等需许可审批的项目）；国内货物运输代理；装卸搬运"
        "（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。",
    ),
    (
        "农业开发",
        "一般项目：谷物种植；蔬菜种植；水果种植；农副产品销售；农业专业及辅助性活动（除依法须经"
        "批准的项目外，凭营业执照依法自主开展经营活动）。",
    ),
)
_FOOD_TRADES: tuple[tuple[str, str, str, str], ...] = (
    (
        "餐饮管理",
        "许可项目：餐饮服务。一般项目：餐饮管理；食品销售（仅销售预包装食品）（依法须经批准的项目，"
        "经相关部门批准后方可开展经营活动）。",
        "热食类食品制售；冷食类食品制售；预包装食品（含冷藏冷冻食品）销售",
        "餐饮服务经营者（中型餐馆）",
    ),
    (
        "超市",
        "许可项目：食品销售。一般项目：日用百货销售；食用农产品零售（依法须经批准的项目，经相关"
        "部门批准后方可开展经营活动）。",
        "预包装食品（含冷藏冷冻食品）销售；散装食品（含冷藏冷冻食品）销售；保健食品销售",
        "食品销售经营者（超市）",
    ),
    (
        "食品",
        "许可项目：食品销售；食品互联网销售。一般项目：农副产品销售（依法须经批准的项目，经相关"
        "部门批准后方可开展经营活动）。",
        "预包装食品（不含冷藏冷冻食品）销售；特殊食品销售（婴幼儿配方乳粉）",
        "食品销售经营者（食杂店）",
    ),
)
_CAPITAL = ("50万元人民币", "100万元人民币", "300万元人民币", "500万元人民币", "1000万元人民币")
_DISABILITY = ("视力残疾", "听力残疾", "言语残疾", "肢体残疾", "智力残疾", "精神残疾", "多重残疾")
_LEVELS = ("一级", "二级", "三级", "四级")
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"

ISSUED_FROM = date(2020, 1, 2)
"""No demo license is issued before this day: the demo issuer certificates start on
2020-01-01, and a license issued before its certificate would be ``cert_expired``."""
REVOKED_ON = date(2025, 11, 20)
SUSPENDED_ON = date(2025, 12, 2)


@dataclass(frozen=True)
class SampleLicense:
    """One demo license: the document to sign, its serial and its intended status."""

    document: dict[str, Any]
    serial: str
    status: LicenseStatus


class _Maker:
    """Draws one city's people, companies and places from a seeded generator."""

    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.area = cfg.id.removeprefix("cn-")
        self.rng = random.Random(f"tongban-samples/{cfg.id}")
        self.city = _CITIES.get(self.area) or _City(
            "", "", cfg.name.split()[0], ((self.area, ""),), ("人民路", "解放路", "中山路")
        )
        self.serials: set[int] = set()

    def serial(self, issued_on: date) -> str:
        while True:  # bounded in practice: 10 draws from 90,000 numbers
            n = self.rng.randrange(10_000, 99_999)
            if n not in self.serials:
                self.serials.add(n)
                return f"{issued_on.year % 100:02d}{n:05d}"

    def day(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randrange((end - start).days))

    def person(self, *, born_by: date = date(2000, 12, 31)) -> dict[str, str]:
        """A resident registered in one of the city's districts, born by ``born_by``."""
        male = self.rng.random() < 0.5
        name = self.rng.choice(_FAMILY) + self.rng.choice(_MALE if male else _FEMALE)
        district = self.rng.choice(self.city.districts)[0]
        born = self.day(date(1950, 1, 1), born_by)
        seq = self.rng.randrange(1, 499) * 2 + (1 if male else 0)
        return {
            "name": name,
            "id_type": ID_TYPE_RESIDENT,
            "id": make_resident_id(district, born, f"{seq:03d}"),
        }

    def address(self) -> tuple[str, str]:
        code, district = self.rng.choice(self.city.districts)
        road = self.rng.choice(self.city.roads)
        return (
            code,
            f"{self.city.province}{self.city.city}{district}{road}{self.rng.randrange(1, 300)}号",
        )

    def company(self, trade: str) -> tuple[str, str, str]:
        """(name, USCC, district code) of a company registered in the city."""
        code, _ = self.rng.choice(self.city.districts)
        org = "MA" + "".join(self.rng.choice(_USCC_CHARS) for _ in range(6))
        uscc = make_uscc("91" + code, org)
        name = f"{self.city.city.removesuffix('市')}{self.rng.choice(_BRANDS)}{trade}有限公司"
        return name, uscc, code

    def document(
        self,
        license_type: tuple[str, str],
        serial: str,
        *,
        number: str,
        holder: dict[str, str],
        issued_on: date,
        valid_from: date,
        valid_until: date | None,
        data: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "identifier": make_license_identifier(license_type[0], self.cfg.issuer_uscc, serial),
            "type_code": license_type[0],
            "type_name": license_type[1],
            "number": number,
            "holder": holder,
            "issuer": {"name": self.cfg.issuer_name, "code": self.cfg.issuer_uscc},
            "area_code": self.area,
            "issued_on": issued_on.isoformat(),
            "valid_from": valid_from.isoformat(),
            "valid_until": None if valid_until is None else valid_until.isoformat(),
            "data": data,
        }


def _years_after(day: date, years: int) -> date:
    """The same day ``years`` later; 29 February becomes 28 February in common years."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _status(identifier: str, status: StatusValue, since: date, reason: str | None) -> LicenseStatus:
    return LicenseStatus(identifier, status, f"{since.isoformat()}T01:30:00Z", reason)


def _business(
    m: _Maker,
    *,
    term_years: int | None,
    founded_between: tuple[date, date] = (
        date(2008, 1, 1),
        date(2022, 12, 31),
    ),
) -> tuple[dict[str, Any], str, date]:
    """A company's business licence; ``term_years`` None is 长期 (no end of 营业期限)."""
    trade, scope = m.rng.choice(_TRADES)
    name, uscc, _ = m.company(trade)
    founded = m.day(*founded_between)
    # issued (or last reissued, 换照) after the issuer certificates of the demo start
    until = None if term_years is None else _years_after(founded, term_years)
    latest = date(2025, 10, 31) if until is None else min(date(2025, 10, 31), until)
    issued = m.day(max(founded, ISSUED_FROM), latest)
    serial = m.serial(issued)
    _, address = m.address()
    doc = m.document(
        BUSINESS_LICENCE,
        serial,
        number=uscc,
        holder={"name": name, "id_type": ID_TYPE_USCC, "id": uscc},
        issued_on=issued,
        valid_from=founded,
        valid_until=until,
        data={
            "enterprise_name": name,
            "enterprise_type": "有限责任公司（自然人投资或控股）",
            "legal_representative": m.person()["name"],
            "registered_capital": m.rng.choice(_CAPITAL),
            "established_on": founded.isoformat(),
            "address": address,
            "business_scope": scope,
        },
    )
    return doc, serial, issued


def _food(m: _Maker, *, issued_between: tuple[date, date]) -> tuple[dict[str, Any], str, date]:
    trade, _scope, items, form = m.rng.choice(_FOOD_TRADES)
    name, uscc, district = m.company(trade)
    issued = m.day(*issued_between)
    serial = m.serial(issued)
    _, address = m.address()
    kind = "2" if "餐饮" in form else "1"  # 主体业态: 1 食品销售, 2 餐饮服务
    number = f"JY{kind}{district}{m.rng.randrange(10**6):06d}{m.rng.randrange(10)}"
    doc = m.document(
        FOOD_BUSINESS_LICENCE,
        serial,
        number=number,
        holder={"name": name, "id_type": ID_TYPE_USCC, "id": uscc},
        issued_on=issued,
        valid_from=issued,
        valid_until=_years_after(issued, 5) - timedelta(days=1),
        data={
            "enterprise_name": name,
            "legal_representative": m.person()["name"],
            "address": address,
            "main_business_form": form,
            "business_items": items,
            "supervising_authority": f"{m.city.city}市场监督管理局",
        },
    )
    return doc, serial, issued


def _disability(
    m: _Maker, *, issued_between: tuple[date, date]
) -> tuple[dict[str, Any], str, date]:
    issued = m.day(*issued_between)
    holder = m.person(born_by=issued)
    category = m.rng.randrange(len(_DISABILITY))
    level = m.rng.randrange(len(_LEVELS))
    serial = m.serial(issued)
    _, address = m.address()
    doc = m.document(
        DISABILITY_CERTIFICATE,
        serial,
        number=f"{holder['id']}{category + 1}{level + 1}",
        holder=holder,
        issued_on=issued,
        valid_from=issued,
        valid_until=_years_after(issued, 10) - timedelta(days=1),
        data={
            "disability_category": _DISABILITY[category],
            "disability_level": _LEVELS[level],
            "address": address,
        },
    )
    return doc, serial, issued


def _real_estate(m: _Maker) -> tuple[dict[str, Any], str, date]:
    issued = m.day(ISSUED_FROM, date(2025, 10, 31))
    holder = m.person(born_by=_years_after(issued, -22))
    serial = m.serial(issued)
    district, address = m.address()
    building, unit, floor = m.rng.randrange(1, 30), m.rng.randrange(1, 4), m.rng.randrange(2, 28)
    room = f"{floor}{m.rng.randrange(1, 5):02d}"
    zone, parcel, house = (
        m.rng.randrange(1, 40),
        m.rng.randrange(1, 99999),
        m.rng.randrange(1, 9999),
    )
    unit_number = f"{district}{zone:03d}{m.rng.randrange(1, 20):03d}GB{parcel:05d}F{house:08d}"
    doc = m.document(
        REAL_ESTATE_CERTIFICATE,
        serial,
        number=(
            f"{m.city.short}（{issued.year}）{m.city.city.removesuffix('市')}市不动产权"
            f"第{m.rng.randrange(1, 99999):07d}号"
        ),
        holder=holder,
        issued_on=issued,
        valid_from=issued,
        valid_until=None,
        data={
            "location": f"{address}{building}幢{unit}单元{room}室",
            "unit_number": unit_number,
            "area_m2": round(m.rng.uniform(48, 180), 2),
            "right_type": "国有建设用地使用权/房屋所有权",
            "right_nature": "出让/市场化商品房",
            "use": "城镇住宅用地/住宅",
            "land_use_until": date(issued.year + 70, 12, 31).isoformat(),
            "co_ownership": "单独所有",
        },
    )
    return doc, serial, issued


def sample_licenses(cfg: NodeConfig) -> list[SampleLicense]:
    """The demo licenses of ``cfg``'s city, with their serials and intended statuses."""
    m = _Maker(cfg)
    made: list[tuple[tuple[dict[str, Any], str, date], StatusValue, str | None, date | None]] = [
        (_business(m, term_years=None), "valid", None, None),
        (_business(m, term_years=30), "valid", None, None),
        (_business(m, term_years=None), "revoked", "企业已办理注销登记，营业执照收回", REVOKED_ON),
        # 营业期限 of 20 years that ended before today: expired
        (
            _business(m, term_years=20, founded_between=(date(2001, 1, 1), date(2005, 6, 30))),
            "valid",
            None,
            None,
        ),
        (_food(m, issued_between=(date(2022, 1, 1), date(2025, 10, 31))), "valid", None, None),
        # five years from 2020-21: expired
        (_food(m, issued_between=(ISSUED_FROM, date(2021, 6, 30))), "valid", None, None),
        (
            _food(m, issued_between=(date(2022, 6, 1), date(2025, 6, 30))),
            "suspended",
            "食品安全监督检查发现问题，责令停业整改",
            SUSPENDED_ON,
        ),
        (_disability(m, issued_between=(ISSUED_FROM, date(2025, 10, 31))), "valid", None, None),
        (_disability(m, issued_between=(ISSUED_FROM, date(2025, 10, 31))), "valid", None, None),
        (_real_estate(m), "valid", None, None),
        (_real_estate(m), "valid", None, None),
    ]
    samples = []
    for (document, serial, issued), status, reason, since in made:
        samples.append(
            SampleLicense(
                document=document,
                serial=serial,
                status=_status(document["identifier"], status, since or issued, reason),
            )
        )
    return samples


def sample_documents(cfg: NodeConfig) -> list[dict[str, Any]]:
    """The demo license documents of ``cfg``'s city (unsigned)."""
    return [s.document for s in sample_licenses(cfg)]


def sample_statuses(cfg: NodeConfig) -> dict[str, LicenseStatus]:
    """The intended status of each demo license, by identifier."""
    return {s.document["identifier"]: s.status for s in sample_licenses(cfg)}
