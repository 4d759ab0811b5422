"""Writes tests/data/pairs/*.csv from the hand-written lists below (all written for ragtune).

    python -m tests.support.make_pairs_data

Deterministic (seeded); rerunning rewrites the same files. Labels follow the
rules next to each list, so they can be checked and changed in one place.
"""

from __future__ import annotations

import csv
import itertools
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "data" / "pairs"

# ---------------------------------------------------------------- skills
# domain -> concept -> phrasings. Same concept: 0.9; same domain: 0.6;
# related domains: RELATED_DOMAINS; other tech domains: 0.1; tech vs non-tech: 0.0.
SKILLS: dict[str, dict[str, list[str]]] = {
    "mobile testing": {
        "appium": [
            "Mobile Automation with Appium",
            "Appium mobile testing",
            "Appium test automation for Android and iOS",
        ],
        "espresso": ["Android UI testing with Espresso", "Espresso instrumentation tests"],
        "xcuitest": ["iOS UI testing with XCUITest", "XCUITest automation"],
    },
    "web testing": {
        "selenium": ["Selenium WebDriver", "Browser automation with Selenium", "Selenium test automation"],
        "cypress": ["Cypress end-to-end testing", "E2E tests with Cypress"],
        "playwright": ["Playwright browser testing", "Cross-browser automation with Playwright"],
    },
    "devops": {
        "cicd": ["Continuous integration and delivery", "CI/CD pipelines", "Build and release automation"],
        "kubernetes": ["Kubernetes", "Container orchestration with Kubernetes", "K8s cluster administration"],
        "terraform": ["Terraform", "Infrastructure as code with Terraform", "IaC using Terraform"],
        "devops": ["DevOps", "DevOps engineering", "DevOps practices"],
    },
    "frontend": {
        "react": ["React", "React.js development", "Building user interfaces with React"],
        "frontend": ["Frontend Development", "Front-end web development", "Client-side web development"],
        "css": ["CSS", "Styling with CSS and Sass", "Responsive web layouts"],
    },
    "backend": {
        "spring": ["Java Spring Boot", "Spring Boot microservices", "Backend development in Java"],
        "node": ["Node.js", "Server-side JavaScript with Node.js", "Express.js APIs"],
        "rest": ["REST API design", "RESTful web services", "Designing HTTP APIs"],
    },
    "data": {
        "sql": ["SQL", "Relational database querying", "Writing SQL queries"],
        "pandas": ["Data analysis with pandas", "Exploratory data analysis", "Pandas dataframes"],
        "ml": ["Machine learning", "Training ML models", "Predictive modelling"],
    },
    "cloud": {
        "aws": ["Amazon Web Services", "AWS cloud", "AWS (EC2, S3, Lambda)"],
        "azure": ["Microsoft Azure", "Azure cloud services"],
    },
    "security": {
        "pentest": ["Penetration testing", "Ethical hacking", "Pentesting web applications"],
        "iam": ["Identity and access management", "IAM policies", "Access control management"],
    },
    "delivery": {
        "pm": ["Project management", "Managing project timelines and budgets", "Project planning"],
        "scrum": ["Scrum", "Scrum master", "Running agile ceremonies"],
    },
    "design": {
        "ux": ["UX design", "User experience research", "Usability testing with users"],
        "figma": ["Figma", "UI design in Figma", "Prototyping with Figma"],
    },
    "finance": {
        "accounting": ["Accounting", "Bookkeeping", "Financial accounting"],
    },
    "healthcare": {
        "nursing": ["Patient care", "Registered nursing", "Clinical nursing"],
    },
    "sales": {
        "sales": ["B2B sales", "Account management", "Closing sales deals"],
    },
}
NON_TECH = {"finance", "healthcare", "sales"}
RELATED_DOMAINS = {
    frozenset({"mobile testing", "web testing"}): 0.5,
    frozenset({"devops", "cloud"}): 0.5,
    frozenset({"design", "frontend"}): 0.4,
    frozenset({"frontend", "backend"}): 0.3,
    frozenset({"backend", "data"}): 0.3,
    frozenset({"security", "cloud"}): 0.3,
    frozenset({"security", "devops"}): 0.3,
    frozenset({"devops", "backend"}): 0.3,
    frozenset({"web testing", "frontend"}): 0.3,
    frozenset({"mobile testing", "devops"}): 0.2,
    frozenset({"web testing", "devops"}): 0.2,
    frozenset({"delivery", "sales"}): 0.2,
}
# Pairs written out by hand; they win over the generated ones.
SKILL_ANCHORS = [
    ("Mobile Automation with Appium", "Appium mobile testing", 0.9),
    ("DevOps", "Frontend Development", 0.1),
    ("No Skill", "No Skill", 1.0),
    ("No Skill", "No skills listed", 0.9),
    ("No Skill", "Kubernetes", 0.0),
    ("No Skill", "Project management", 0.0),
    ("No Skill", "Patient care", 0.0),
    ("No skills listed", "React", 0.0),
    ("No skills listed", "SQL", 0.0),
    ("Java", "JavaScript", 0.2),
    ("Java Spring Boot", "JavaScript", 0.15),
    ("React", "React Native", 0.6),
    ("React Native", "Mobile Automation with Appium", 0.3),
    ("Scrum master", "Scrum", 0.9),
    ("Agile", "Scrum", 0.7),
    ("Agile", "Waterfall project management", 0.3),
    ("Manual testing", "Selenium test automation", 0.5),
    ("Manual testing", "Appium mobile testing", 0.45),
    ("Testing", "Penetration testing", 0.2),
    ("Unit testing with JUnit", "Java Spring Boot", 0.4),
    ("Unit testing with JUnit", "Cypress end-to-end testing", 0.45),
    ("Excel", "Financial accounting", 0.3),
    ("Excel", "Data analysis with pandas", 0.4),
    ("Docker", "Kubernetes", 0.7),
    ("Docker", "Container orchestration with Kubernetes", 0.7),
    ("Linux administration", "DevOps", 0.5),
    ("Linux administration", "Figma", 0.0),
    ("Python", "Data analysis with pandas", 0.6),
    ("Python", "Machine learning", 0.5),
    ("Python", "Patient care", 0.0),
    ("Go", "Kubernetes", 0.3),
    ("Deep learning", "Machine learning", 0.8),
    ("Deep learning", "Training ML models", 0.8),
    ("Power BI", "Data analysis with pandas", 0.5),
    ("Power BI", "SQL", 0.4),
    ("Customer service", "Account management", 0.5),
    ("Customer service", "Patient care", 0.3),
    ("Technical writing", "Communication skills", 0.6),
    ("Communication skills", "Stakeholder communication", 0.8),
    ("Stakeholder communication", "Project management", 0.4),
    ("Communication skills", "Kubernetes", 0.0),
]


def skill_pairs(rng: random.Random) -> list[tuple[str, str, float]]:
    concepts = [(d, c, phr) for d, cs in SKILLS.items() for c, phr in cs.items()]
    out: list[tuple[str, str, float]] = []
    for _, _, phrasings in concepts:
        out += [(a, b, 0.9) for a, b in itertools.combinations(phrasings, 2)]
    for (d1, _c1, p1), (d2, _c2, p2) in itertools.combinations(concepts, 2):
        if d1 == d2:
            label, n = 0.6, 2
        elif frozenset({d1, d2}) in RELATED_DOMAINS:
            label, n = RELATED_DOMAINS[frozenset({d1, d2})], 1
        else:
            # Unrelated concepts are the majority; sample them so they do not swamp the rest.
            if rng.random() > 0.12:
                continue
            label, n = (0.0 if (d1 in NON_TECH) != (d2 in NON_TECH) else 0.1), 1
        for _ in range(n):
            out.append((rng.choice(p1), rng.choice(p2), label))
    return SKILL_ANCHORS + out


# ---------------------------------------------------------------- resumes vs jobs
# role -> (resume summaries, job descriptions). Same role: 0.9 (0.7 when the
# seniority differs, marked with "senior:" in the job text); related roles:
# RELATED_ROLES; anything else 0.05.
ROLES: dict[str, tuple[list[str], list[str]]] = {
    "mobile qa": (
        [
            "QA engineer with 4 years automating Android and iOS regression suites in Appium and Java, "
            "running them nightly on a device farm.",
            "Test automation engineer focused on mobile apps: Espresso and XCUITest suites, flaky-test triage, "
            "and release sign-off for a banking app.",
        ],
        [
            "We are hiring a mobile QA automation engineer to build and maintain Appium tests for our iOS and "
            "Android apps and integrate them into CI.",
            "senior: Lead our mobile quality team: own the test strategy for native apps, mentor automation "
            "engineers, and drive release readiness.",
        ],
    ),
    "web qa": (
        [
            "Software tester who writes Cypress and Selenium end-to-end tests for e-commerce web sites and "
            "reports defects in Jira.",
            "QA analyst with manual and automated web testing experience, comfortable with Playwright and API "
            "testing in Postman.",
        ],
        [
            "Join us as a web test automation engineer: design Playwright or Cypress suites for our customer "
            "portal and keep them green in CI."
        ],
    ),
    "frontend": (
        [
            "Frontend developer with 5 years of React and TypeScript, building accessible dashboards and design "
            "systems.",
            "Web developer specialised in responsive interfaces with React, CSS modules and component testing.",
        ],
        [
            "We need a front-end engineer to build React components for our analytics product and work closely "
            "with designers on usability.",
            "senior: Senior frontend engineer to own the architecture of a large React and TypeScript codebase "
            "and set UI performance standards.",
        ],
    ),
    "backend": (
        [
            "Backend engineer building Java Spring Boot microservices with PostgreSQL and Kafka for payment "
            "processing.",
            "Server-side developer with Node.js and Express experience designing REST APIs and background job queues.",
        ],
        [
            "Backend developer wanted to design and operate REST services in Java or Kotlin, with a focus on "
            "reliability and clean APIs."
        ],
    ),
    "devops": (
        [
            "DevOps engineer who runs Kubernetes clusters on AWS, writes Terraform modules and maintains GitLab "
            "CI pipelines.",
            "Site reliability engineer with on-call experience, Prometheus monitoring and incident "
            "post-mortems for high-traffic services.",
        ],
        [
            "We are looking for a platform engineer to automate infrastructure with Terraform, run our "
            "Kubernetes platform and improve deployment pipelines.",
            "senior: Principal SRE to define reliability targets, lead incident response and scale our "
            "multi-region cloud platform.",
        ],
    ),
    "data analyst": (
        [
            "Data analyst fluent in SQL and Python who builds Power BI dashboards and runs A/B test analyses for "
            "marketing.",
            "Business intelligence analyst turning sales data into weekly reports with SQL, Excel and Tableau.",
        ],
        [
            "Hiring a data analyst to write SQL against our warehouse, build self-service dashboards and explain "
            "trends to product managers."
        ],
    ),
    "ml engineer": (
        [
            "Machine learning engineer who trains and deploys recommendation models with PyTorch and serves "
            "them behind low-latency APIs.",
            "Applied scientist with NLP experience: fine-tuning transformer models, building evaluation sets and "
            "monitoring model drift.",
        ],
        [
            "We need an ML engineer to take models from notebooks to production, build training pipelines and "
            "monitor their quality."
        ],
    ),
    "security": (
        [
            "Security analyst performing penetration tests of web applications and cloud accounts, and writing "
            "remediation guidance.",
            "Information security engineer managing IAM policies, SIEM alerts and vulnerability scanning.",
        ],
        [
            "Join our security team to run penetration tests, review cloud configurations and respond to "
            "security incidents."
        ],
    ),
    "ux": (
        [
            "UX designer who runs user interviews and usability tests and turns findings into Figma prototypes.",
            "Product designer with a portfolio of mobile app flows, design systems and accessibility audits.",
        ],
        [
            "We are hiring a UX/UI designer to research user needs, prototype in Figma and work with front-end "
            "engineers on delivery."
        ],
    ),
    "project manager": (
        [
            "Project manager with PMP certification delivering software projects on time and budget with Scrum "
            "and Kanban teams.",
            "Agile delivery lead and certified Scrum master who coaches teams and manages stakeholder expectations.",
        ],
        [
            "Seeking a technical project manager to plan releases, track risks and coordinate engineering, "
            "design and sales stakeholders."
        ],
    ),
    "nurse": (
        [
            "Registered nurse with 6 years in intensive care, experienced in patient assessment, medication "
            "administration and family education.",
            "Community health nurse supporting elderly patients at home, coordinating care plans with doctors "
            "and social workers.",
        ],
        [
            "Hospital seeks a registered nurse for the surgical ward: patient care, wound management and "
            "accurate clinical documentation."
        ],
    ),
    "accountant": (
        [
            "Accountant preparing monthly closes, reconciliations and VAT returns for small businesses using "
            "Xero and Excel.",
            "Financial accountant with audit experience, IFRS reporting and payroll processing.",
        ],
        [
            "We are hiring an accountant to manage bookkeeping, month-end close and tax filings for a growing "
            "retail company."
        ],
    ),
    "sales": (
        [
            "B2B account executive who exceeded quota for three years selling SaaS subscriptions to "
            "mid-market companies.",
            "Sales representative experienced in prospecting, product demos and negotiating annual contracts.",
        ],
        [
            "Account executive wanted to own a sales territory, build a pipeline of enterprise prospects and "
            "close new business."
        ],
    ),
}
RELATED_ROLES = {
    frozenset({"mobile qa", "web qa"}): 0.6,
    frozenset({"frontend", "backend"}): 0.4,
    frozenset({"frontend", "ux"}): 0.4,
    frozenset({"frontend", "web qa"}): 0.3,
    frozenset({"backend", "devops"}): 0.4,
    frozenset({"data analyst", "ml engineer"}): 0.5,
    frozenset({"backend", "ml engineer"}): 0.3,
    frozenset({"devops", "security"}): 0.4,
    frozenset({"backend", "security"}): 0.2,
    frozenset({"project manager", "sales"}): 0.2,
    frozenset({"data analyst", "accountant"}): 0.3,
    frozenset({"nurse", "sales"}): 0.0,
}
NO_SUMMARY = [
    ("No summary provided", "We are hiring a registered nurse for the surgical ward.", 0.0),
    ("No summary provided", "No summary provided", 1.0),
]


def resume_pairs(rng: random.Random) -> list[tuple[str, str, float]]:
    out: list[tuple[str, str, float]] = []
    for (r1, (resumes, _)), (r2, (_, jobs)) in itertools.product(ROLES.items(), ROLES.items()):
        for resume, job in itertools.product(resumes, jobs):
            senior = job.startswith("senior: ")
            job_text = job.removeprefix("senior: ")
            if r1 == r2:
                label = 0.7 if senior else 0.9
            elif frozenset({r1, r2}) in RELATED_ROLES:
                label = RELATED_ROLES[frozenset({r1, r2})]
                label = round(label * (0.8 if senior else 1.0), 2)
            else:
                if rng.random() > 0.15:
                    continue
                label = 0.05
            out.append((resume, job_text, label))
    return NO_SUMMARY + out


# ---------------------------------------------------------------- vocabulary
# A curated social-services vocabulary: name, description, alternative phrasings.
# Alternatives of one concept are positives (1.0, via --alternatives). Different
# concepts are pushed apart (0.01) unless LOOSE lists them as associated.
VOCABULARY = [
    (
        "Poverty",
        "Household income below what is needed for basic needs",
        ["low income", "living below the poverty line", "financial hardship"],
    ),
    (
        "Incarceration",
        "Being held in prison or jail",
        ["imprisonment", "serving a prison sentence", "detained in jail"],
    ),
    (
        "Homelessness",
        "Having no fixed, regular and adequate place to live",
        ["unhoused", "sleeping rough", "living in a shelter"],
    ),
    (
        "Housing instability",
        "At risk of losing housing or moving often because of cost",
        ["behind on rent", "facing eviction", "couch surfing"],
    ),
    (
        "Food insecurity",
        "Lacking reliable access to enough nutritious food",
        ["hunger", "skipping meals because of cost", "relying on food banks"],
    ),
    ("Unemployment", "Without paid work while able and looking for it", ["jobless", "out of work", "lost their job"]),
    (
        "Substance use disorder",
        "Problematic use of alcohol or drugs",
        ["addiction", "alcohol dependence", "opioid use disorder"],
    ),
    (
        "Mental illness",
        "A diagnosed condition affecting mood, thinking or behaviour",
        ["depression", "mental health condition", "psychiatric disorder"],
    ),
    (
        "Domestic violence",
        "Abuse by a partner or family member in the home",
        ["intimate partner violence", "family violence", "abusive relationship"],
    ),
    (
        "Child maltreatment",
        "Abuse or neglect of a child by a caregiver",
        ["child neglect", "child abuse", "child protective services case"],
    ),
    (
        "Low educational attainment",
        "Leaving school without a diploma or equivalent",
        ["dropped out of high school", "no high school diploma", "limited schooling"],
    ),
    (
        "Uninsured",
        "Without health insurance coverage",
        ["no health coverage", "lacks medical insurance", "uninsured for health care"],
    ),
    (
        "Transportation barriers",
        "Lacking reliable transport to work, school or appointments",
        ["no car", "cannot get to appointments", "limited public transit"],
    ),
    (
        "Disability",
        "A physical or cognitive impairment that limits daily activities",
        ["impairment", "uses a wheelchair", "living with a disability"],
    ),
    (
        "Social isolation",
        "Having few social contacts or relationships",
        ["loneliness", "lives alone with little contact", "socially isolated"],
    ),
    (
        "Limited English proficiency",
        "Difficulty speaking, reading or understanding English",
        ["needs an interpreter", "English language learner", "limited English"],
    ),
    (
        "Veteran",
        "A person who served in the armed forces",
        ["former service member", "military veteran", "ex-military"],
    ),
    (
        "Chronic illness",
        "A long-lasting health condition needing ongoing care",
        ["long-term condition", "diabetes or heart disease", "chronic disease"],
    ),
    (
        "Childcare needs",
        "Lacking affordable care for children while working or studying",
        ["no childcare", "cannot afford daycare", "needs child care"],
    ),
    (
        "Utility shutoff",
        "Electricity, gas or water disconnected or about to be",
        ["power cut off for non-payment", "unpaid utility bills", "disconnection notice"],
    ),
    (
        "Legal problems",
        "Facing a civil or criminal legal matter without representation",
        ["needs a lawyer", "pending court case", "legal aid request"],
    ),
    (
        "Elder care",
        "An older adult needing help with daily living",
        ["caring for an aging parent", "senior needing assistance", "frail elderly"],
    ),
    ("Debt", "Owing more money than can be repaid on time", ["unpaid loans", "in collections", "overwhelming bills"]),
    ("Pregnancy", "Expecting a baby", ["expecting mother", "prenatal care", "pregnant"]),
]
# Associated concepts: not the same, but they often come together.
LOOSE = {
    frozenset({"Homelessness", "Housing instability"}): 0.5,
    frozenset({"Poverty", "Food insecurity"}): 0.4,
    frozenset({"Poverty", "Debt"}): 0.4,
    frozenset({"Poverty", "Unemployment"}): 0.35,
    frozenset({"Poverty", "Utility shutoff"}): 0.35,
    frozenset({"Poverty", "Housing instability"}): 0.35,
    frozenset({"Substance use disorder", "Mental illness"}): 0.4,
    frozenset({"Domestic violence", "Child maltreatment"}): 0.4,
    frozenset({"Incarceration", "Legal problems"}): 0.45,
    frozenset({"Unemployment", "Debt"}): 0.3,
    frozenset({"Chronic illness", "Disability"}): 0.4,
    frozenset({"Chronic illness", "Uninsured"}): 0.2,
    frozenset({"Elder care", "Social isolation"}): 0.3,
    frozenset({"Elder care", "Chronic illness"}): 0.3,
    frozenset({"Veteran", "Mental illness"}): 0.2,
    frozenset({"Pregnancy", "Childcare needs"}): 0.3,
    frozenset({"Transportation barriers", "Unemployment"}): 0.2,
    frozenset({"Debt", "Utility shutoff"}): 0.35,
    frozenset({"Homelessness", "Substance use disorder"}): 0.2,
}
VOCAB_ANCHORS = [
    ("poverty", "incarceration", 0.01),
    ("Poverty", "Incarceration", 0.01),
    ("homelessness", "unemployment", 0.2),
    ("veteran", "disability", 0.2),
]


def vocabulary_pairs(rng: random.Random) -> list[tuple[str, str, float]]:
    out = list(VOCAB_ANCHORS)
    for (n1, _d1, a1), (n2, _d2, a2) in itertools.combinations(VOCABULARY, 2):
        key = frozenset({n1, n2})
        if key in LOOSE:
            picks = 3
        elif rng.random() < 0.3:
            picks = 1
        else:
            continue
        for _ in range(picks):
            out.append((rng.choice([n1, *a1]), rng.choice([n2, *a2]), LOOSE.get(key, 0.01)))
    return out


def _write(path: Path, header: list[str], rows: list[tuple]) -> None:
    seen, kept = set(), []
    for row in rows:
        key = frozenset(row[:2]) if header[0] == "sentence1" else row[0]
        if key not in seen:
            seen.add(key)
            kept.append(row)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(kept)
    print(f"{path.relative_to(OUT.parents[1])}: {len(kept)} rows")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    head = ["sentence1", "sentence2", "label"]
    _write(OUT / "skills.csv", head, skill_pairs(random.Random(1)))
    _write(OUT / "resumes_jobs.csv", head, resume_pairs(random.Random(2)))
    _write(OUT / "vocabulary_pairs.csv", head, vocabulary_pairs(random.Random(3)))
    _write(
        OUT / "vocabulary.csv",
        ["name", "description", "alternatives"],
        [(n, d, "; ".join(alts)) for n, d, alts in VOCABULARY],
    )


if __name__ == "__main__":
    main()
