"""MT5_REFERENCE.md (../shared/MT5_REFERENCE.md), sections 1-4 and 8, written out by hand from the reference
text: the module under test is checked against these tables, never against its own."""

from __future__ import annotations

# Section 1: every module-level function, in the reference's order.
FUNCTIONS = (
    "initialize", "login", "shutdown", "version", "last_error", "account_info", "terminal_info",
    "symbols_total", "symbols_get", "symbol_info", "symbol_info_tick", "symbol_select",
    "market_book_add", "market_book_release", "market_book_get",
    "copy_rates_from", "copy_rates_from_pos", "copy_rates_range", "copy_ticks_from", "copy_ticks_range",
    "orders_total", "orders_get", "order_calc_margin", "order_calc_profit", "order_check", "order_send",
    "positions_total", "positions_get", "history_orders_total", "history_orders_get",
    "history_deals_total", "history_deals_get",
)  # fmt: skip
HELPERS = ("Buy", "Sell", "Close")  # section 0, undocumented helpers

# Section 2 and 3: structures, field names in order.
FIELDS: dict[str, tuple[str, ...]] = {
    "AccountInfo": (
        "login", "trade_mode", "leverage", "limit_orders", "margin_so_mode", "trade_allowed", "trade_expert",
        "margin_mode", "currency_digits", "fifo_close", "balance", "credit", "profit", "equity", "margin",
        "margin_free", "margin_level", "margin_so_call", "margin_so_so", "margin_initial",
        "margin_maintenance", "assets", "liabilities", "commission_blocked", "name", "server", "currency",
        "company",
    ),
    "TerminalInfo": (
        "community_account", "community_connection", "connected", "dlls_allowed", "trade_allowed",
        "tradeapi_disabled", "email_enabled", "ftp_enabled", "notifications_enabled", "mqid", "build",
        "maxbars", "codepage", "ping_last", "community_balance", "retransmission", "company", "name",
        "language", "path", "data_path", "commondata_path",
    ),
    "SymbolInfo": (
        "custom", "chart_mode", "select", "visible", "session_deals", "session_buy_orders",
        "session_sell_orders", "volume", "volumehigh", "volumelow", "time", "digits", "spread",
        "spread_float", "ticks_bookdepth", "trade_calc_mode", "trade_mode", "start_time", "expiration_time",
        "trade_stops_level", "trade_freeze_level", "trade_exemode", "swap_mode", "swap_rollover3days",
        "margin_hedged_use_leg", "expiration_mode", "filling_mode", "order_mode", "order_gtc_mode",
        "option_mode", "option_right",
        "bid", "bidhigh", "bidlow", "ask", "askhigh", "asklow", "last", "lasthigh", "lastlow", "volume_real",
        "volumehigh_real", "volumelow_real", "option_strike", "point", "trade_tick_value",
        "trade_tick_value_profit", "trade_tick_value_loss", "trade_tick_size", "trade_contract_size",
        "trade_accrued_interest", "trade_face_value", "trade_liquidity_rate", "volume_min", "volume_max",
        "volume_step", "volume_limit", "swap_long", "swap_short", "margin_initial", "margin_maintenance",
        "session_volume", "session_turnover", "session_interest", "session_buy_orders_volume",
        "session_sell_orders_volume", "session_open", "session_close", "session_aw",
        "session_price_settlement", "session_price_limit_min", "session_price_limit_max", "margin_hedged",
        "price_change", "price_volatility", "price_theoretical", "price_greeks_delta", "price_greeks_theta",
        "price_greeks_gamma", "price_greeks_vega", "price_greeks_rho", "price_greeks_omega",
        "price_sensitivity",
        "basis", "category", "currency_base", "currency_profit", "currency_margin", "bank", "description",
        "exchange", "formula", "isin", "name", "page", "path",
    ),
    "Tick": ("time", "bid", "ask", "last", "volume", "time_msc", "flags", "volume_real"),
    "BookInfo": ("type", "price", "volume", "volume_dbl"),
    "TradeOrder": (
        "ticket", "time_setup", "time_setup_msc", "time_done", "time_done_msc", "time_expiration", "type",
        "type_time", "type_filling", "state", "magic", "position_id", "position_by_id", "reason",
        "volume_initial", "volume_current", "price_open", "sl", "tp", "price_current", "price_stoplimit",
        "symbol", "comment", "external_id",
    ),
    "TradePosition": (
        "ticket", "time", "time_msc", "time_update", "time_update_msc", "type", "magic", "identifier",
        "reason", "volume", "price_open", "sl", "tp", "price_current", "swap", "profit", "symbol", "comment",
        "external_id",
    ),
    "TradeDeal": (
        "ticket", "order", "time", "time_msc", "type", "entry", "magic", "position_id", "reason", "volume",
        "price", "commission", "swap", "profit", "fee", "symbol", "comment", "external_id",
    ),
    "TradeRequest": (
        "action", "magic", "order", "symbol", "volume", "price", "stoplimit", "sl", "tp", "deviation", "type",
        "type_filling", "type_time", "expiration", "comment", "position", "position_by",
    ),
    "OrderCheckResult": (
        "retcode", "balance", "equity", "profit", "margin", "margin_free", "margin_level", "comment",
        "request",
    ),
    "OrderSendResult": (
        "retcode", "deal", "order", "volume", "price", "bid", "ask", "comment", "request_id",
        "retcode_external", "request",
    ),
}  # fmt: skip
COUNTS = {
    "AccountInfo": 28, "TerminalInfo": 22, "SymbolInfo": 96, "Tick": 8, "BookInfo": 4, "TradeOrder": 24,
    "TradePosition": 19, "TradeDeal": 18, "TradeRequest": 17, "OrderCheckResult": 9, "OrderSendResult": 11,
}  # fmt: skip

# Section 3.11: numpy dtypes of the copy_* functions.
RATES_DTYPE = [
    ("time", "<i8"), ("open", "<f8"), ("high", "<f8"), ("low", "<f8"), ("close", "<f8"),
    ("tick_volume", "<u8"), ("spread", "<i4"), ("real_volume", "<u8"),
]  # fmt: skip
TICKS_DTYPE = [
    ("time", "<i8"), ("bid", "<f8"), ("ask", "<f8"), ("last", "<f8"), ("volume", "<u8"),
    ("time_msc", "<i8"), ("flags", "<u4"), ("volume_real", "<f8"),
]  # fmt: skip


def _enum(prefix: str, pairs: str) -> dict[str, int]:
    out = {}
    for item in pairs.split(","):
        name, value = item.split()
        out[prefix + name] = int(value, 0)
    return out


# Section 4, row by row.
CONSTANTS: dict[str, int] = {
    **_enum("TRADE_ACTION_", "DEAL 1, PENDING 5, SLTP 6, MODIFY 7, REMOVE 8, CLOSE_BY 10"),
    **_enum(
        "ORDER_TYPE_",
        "BUY 0, SELL 1, BUY_LIMIT 2, SELL_LIMIT 3, BUY_STOP 4, SELL_STOP 5, BUY_STOP_LIMIT 6,"
        " SELL_STOP_LIMIT 7, CLOSE_BY 8",
    ),
    **_enum("ORDER_FILLING_", "FOK 0, IOC 1, RETURN 2, BOC 3"),
    **_enum("ORDER_TIME_", "GTC 0, DAY 1, SPECIFIED 2, SPECIFIED_DAY 3"),
    **_enum(
        "ORDER_STATE_",
        "STARTED 0, PLACED 1, CANCELED 2, PARTIAL 3, FILLED 4, REJECTED 5, EXPIRED 6, REQUEST_ADD 7,"
        " REQUEST_MODIFY 8, REQUEST_CANCEL 9",
    ),
    **_enum("ORDER_REASON_", "CLIENT 0, MOBILE 1, WEB 2, EXPERT 3, SL 4, TP 5, SO 6"),
    **_enum("POSITION_TYPE_", "BUY 0, SELL 1"),
    **_enum("POSITION_REASON_", "CLIENT 0, MOBILE 1, WEB 2, EXPERT 3"),
    **_enum(
        "DEAL_TYPE_",
        "BUY 0, SELL 1, BALANCE 2, CREDIT 3, CHARGE 4, CORRECTION 5, BONUS 6, COMMISSION 7,"
        " COMMISSION_DAILY 8, COMMISSION_MONTHLY 9, COMMISSION_AGENT_DAILY 10,"
        " COMMISSION_AGENT_MONTHLY 11, INTEREST 12, BUY_CANCELED 13, SELL_CANCELED 14",
    ),
    "DEAL_DIVIDEND": 15,
    "DEAL_DIVIDEND_FRANKED": 16,
    "DEAL_TAX": 17,
    **_enum("DEAL_ENTRY_", "IN 0, OUT 1, INOUT 2, OUT_BY 3"),
    **_enum(
        "DEAL_REASON_",
        "CLIENT 0, MOBILE 1, WEB 2, EXPERT 3, SL 4, TP 5, SO 6, ROLLOVER 7, VMARGIN 8, SPLIT 9",
    ),
    **_enum("ACCOUNT_TRADE_MODE_", "DEMO 0, CONTEST 1, REAL 2"),
    **_enum("ACCOUNT_STOPOUT_MODE_", "PERCENT 0, MONEY 1"),
    **_enum("ACCOUNT_MARGIN_MODE_", "RETAIL_NETTING 0, EXCHANGE 1, RETAIL_HEDGING 2"),
    **_enum("SYMBOL_TRADE_MODE_", "DISABLED 0, LONGONLY 1, SHORTONLY 2, CLOSEONLY 3, FULL 4"),
    **_enum("SYMBOL_TRADE_EXECUTION_", "REQUEST 0, INSTANT 1, MARKET 2, EXCHANGE 3"),
    **_enum(
        "SYMBOL_CALC_MODE_",
        "FOREX 0, FUTURES 1, CFD 2, CFDINDEX 3, CFDLEVERAGE 4, FOREX_NO_LEVERAGE 5, EXCH_STOCKS 32,"
        " EXCH_FUTURES 33, EXCH_OPTIONS 34, EXCH_OPTIONS_MARGIN 36, EXCH_BONDS 37, EXCH_STOCKS_MOEX 38,"
        " EXCH_BONDS_MOEX 39, SERV_COLLATERAL 64",
    ),
    **_enum(
        "SYMBOL_SWAP_MODE_",
        "DISABLED 0, POINTS 1, CURRENCY_SYMBOL 2, CURRENCY_MARGIN 3, CURRENCY_DEPOSIT 4,"
        " INTEREST_CURRENT 5, INTEREST_OPEN 6, REOPEN_CURRENT 7, REOPEN_BID 8",
    ),
    **_enum("SYMBOL_", "ORDERS_GTC 0, ORDERS_DAILY 1, ORDERS_DAILY_NO_STOPS 2"),
    **_enum("SYMBOL_CHART_MODE_", "BID 0, LAST 1"),
    **_enum("SYMBOL_OPTION_RIGHT_", "CALL 0, PUT 1"),
    **_enum("SYMBOL_OPTION_MODE_", "EUROPEAN 0, AMERICAN 1"),
    **_enum("DAY_OF_WEEK_", "SUNDAY 0, MONDAY 1, TUESDAY 2, WEDNESDAY 3, THURSDAY 4, FRIDAY 5, SATURDAY 6"),
    **_enum("BOOK_TYPE_", "SELL 1, BUY 2, SELL_MARKET 3, BUY_MARKET 4"),
    **_enum("COPY_TICKS_", "ALL -1, INFO 1, TRADE 2"),
    **_enum("TICK_FLAG_", "BID 0x02, ASK 0x04, LAST 0x08, VOLUME 0x10, BUY 0x20, SELL 0x40"),
    **_enum(
        "TIMEFRAME_",
        "M1 1, M2 2, M3 3, M4 4, M5 5, M6 6, M10 10, M12 12, M15 15, M20 20, M30 30, H1 16385, H2 16386,"
        " H3 16387, H4 16388, H6 16390, H8 16392, H12 16396, D1 16408, W1 32769, MN1 49153",
    ),
    # Section 7: the retcodes the package defines (10004-10045; no 10005, no 10037).
    **_enum(
        "TRADE_RETCODE_",
        "REQUOTE 10004, REJECT 10006, CANCEL 10007, PLACED 10008, DONE 10009, DONE_PARTIAL 10010,"
        " ERROR 10011, TIMEOUT 10012, INVALID 10013, INVALID_VOLUME 10014, INVALID_PRICE 10015,"
        " INVALID_STOPS 10016, TRADE_DISABLED 10017, MARKET_CLOSED 10018, NO_MONEY 10019,"
        " PRICE_CHANGED 10020, PRICE_OFF 10021, INVALID_EXPIRATION 10022, ORDER_CHANGED 10023,"
        " TOO_MANY_REQUESTS 10024, NO_CHANGES 10025, SERVER_DISABLES_AT 10026, CLIENT_DISABLES_AT 10027,"
        " LOCKED 10028, FROZEN 10029, INVALID_FILL 10030, CONNECTION 10031, ONLY_REAL 10032,"
        " LIMIT_ORDERS 10033, LIMIT_VOLUME 10034, INVALID_ORDER 10035, POSITION_CLOSED 10036,"
        " INVALID_CLOSE_VOLUME 10038, CLOSE_ORDER_EXIST 10039, LIMIT_POSITIONS 10040,"
        " REJECT_CANCEL 10041, LONG_ONLY 10042, SHORT_ONLY 10043, CLOSE_ONLY 10044, FIFO_CLOSE 10045",
    ),
    # Section 8: last_error() codes.
    "RES_S_OK": 1,
    **_enum(
        "RES_E_",
        "FAIL -1, INVALID_PARAMS -2, NO_MEMORY -3, NOT_FOUND -4, INVALID_VERSION -5, AUTH_FAILED -6,"
        " UNSUPPORTED -7, AUTO_TRADING_DISABLED -8, INTERNAL_FAIL -10000, INTERNAL_FAIL_SEND -10001,"
        " INTERNAL_FAIL_RECEIVE -10002, INTERNAL_FAIL_INIT -10003, INTERNAL_FAIL_CONNECT -10004,"
        " INTERNAL_FAIL_TIMEOUT -10005",
    ),
}

# Section 4, "constants that MQL5 has but the Python package does NOT export".
NOT_EXPORTED = (
    "SYMBOL_FILLING_FOK", "SYMBOL_FILLING_IOC", "SYMBOL_FILLING_BOC", "SYMBOL_EXPIRATION_GTC",
    "SYMBOL_EXPIRATION_DAY", "SYMBOL_EXPIRATION_SPECIFIED", "SYMBOL_EXPIRATION_SPECIFIED_DAY",
    "SYMBOL_ORDER_MARKET", "SYMBOL_ORDER_LIMIT", "SYMBOL_ORDER_STOP", "SYMBOL_ORDER_STOP_LIMIT",
    "SYMBOL_ORDER_SL", "SYMBOL_ORDER_TP", "SYMBOL_ORDER_CLOSEBY", "TRADE_RETCODE_HEDGE_PROHIBITED",
)  # fmt: skip

# Section 8: codes and the texts the package gives.
NO_IPC = (-10004, "No IPC connection")
SUCCESS = (1, "Success")
AUTH_FAILED = (-6, "Terminal: Authorization failed")
