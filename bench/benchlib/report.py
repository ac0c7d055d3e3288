"""The result table: one row per figure with its baseline from the same run."""


class Row:
    def __init__(self, section, figure, value, baseline="-", ratio=None, target="-", met=None):
        self.section, self.figure, self.value, self.baseline = section, figure, value, baseline
        self.ratio, self.target, self.met = ratio, target, met

    def cells(self):
        ratio = "-" if self.ratio is None else ("%.2fx" % self.ratio)
        met = {True: "yes", False: "**NO**", None: "-"}[self.met]
        return [self.figure, self.value, self.baseline, ratio, self.target, met]

    def as_dict(self):
        return {"section": self.section, "figure": self.figure, "value": self.value, "baseline": self.baseline,
                "ratio": self.ratio, "target": self.target, "met": self.met}


HEADER = ["figure", "value", "baseline (same run)", "ratio", "target", "met?"]


def table(rows):
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r.cells()) + " |")
    return "\n".join(lines)


def us(v):
    return "-" if v is None else ("%d us" % v if v < 1000 else "%.2f ms" % (v / 1000))


def ms(v):
    return "-" if v is None else "%.2f ms" % v


def rps(v):
    return "-" if v is None else "{:,.0f} req/s".format(v)


def mb(kb):
    return "-" if kb is None else "%.2f MiB" % (kb / 1024)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b
