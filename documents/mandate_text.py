"""French wording of the mandate PDF, kept apart from the layout so it can be reviewed alone.

Part A is the delegation mandate (client -> firm); part B follows the DGFiP model
"accord formel" (DSE v3.2, figure 38), block by block.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from documents.models import AddressScope, CompanyParty, MandateDocumentData, Person, PlatformParty

# A run of text and whether it is bold; a paragraph is a list of runs.
Run = tuple[str, bool]

DELEGATION_TITLE = "MANDAT DE DÉLÉGATION"
DELEGATION_SUBTITLE = (
    "pour la désignation de la plateforme agréée de réception des factures électroniques "
    "et la mise à jour des adresses de facturation électronique dans l'annuaire"
)
ACCORD_TITLE = (
    "ACCORD FORMEL DE DÉSIGNATION DE LA PLATEFORME DE RÉCEPTION DES FACTURES ET DE DEMANDE "
    "DE MISE À JOUR DES ADRESSES DE FACTURATION ÉLECTRONIQUE DE RÉCEPTION DE FACTURES"
)
ACCORD_SUBTITLE = "Établi selon le modèle d'accord formel publié par la DGFiP"
SIGNATURE_LABEL = "Signature du représentant légal"
LEGAL_REPRESENTATIVE = "Représentant légal"
NOT_GIVEN = "Non renseigné"
SIGNATURE_DATE = "Date de la signature électronique"
# YouSign writes it under the signature box when the client signs (a mention field, `%date%`).
DATE_MENTION = "Signé le %date%"

BLOCK_TITLES: tuple[str, ...] = (
    "Entreprise assujettie donnant mandat à la plateforme agréée",
    "Plateforme agréée désignée",
    "Date de prise d'effet du mandat",
    "Périmètre des adresses de réception confiées à la plateforme agréée",
    "Plateforme agréée précédemment en charge de tout ou partie de ces adresses",
    "Numéro du mandat",
    "Signature du représentant légal de l'entreprise",
)


@dataclass(frozen=True)
class Article:
    title: str
    runs: list[Run]  # one paragraph


def fr_date(value: date) -> str:
    return value.strftime("%d/%m/%Y")


def person_name(person: Person) -> str:
    return f"{person.first_name} {person.last_name}"


def platform_ids(platform: PlatformParty) -> str:
    ids = []
    if platform.siren:
        ids.append(f"SIREN {platform.siren}")
    if platform.matricule:
        ids.append(f"matricule {platform.matricule}")
    return ", ".join(ids)


def capacity(person: Person, title: str = LEGAL_REPRESENTATIVE) -> str:
    """What entitles the person to sign: legal representative, with their position when given."""
    return f"{title} ({person.position})" if person.position else title


def _party(company: CompanyParty, person: Person, kind: str, role: str) -> list[Run]:
    # A SIREN identifies; "immatriculée" would say the RCS or RNE, which a client may not be in.
    ids = f", {kind} identifiée sous le numéro SIREN {company.siren}"
    if company.siret:
        ids += f" (SIRET {company.siret})"
    if company.address:
        ids += f", dont le siège est situé {company.address}"
    represented = f", représentée par {person_name(person)}"
    if person.birth_name:
        represented += f" (nom de naissance : {person.birth_name})"
    return [
        (company.name, True),
        (ids + represented + f", en sa qualité de {capacity(person, 'représentant légal')}, {role}", False),
    ]


def parties(data: MandateDocumentData) -> list[list[Run]]:
    return [
        # "Entreprise", as the DGFiP model says: the client may be a sole trader or an association.
        _party(
            data.client,
            data.client_representative,
            "entreprise",
            "ci-après «\u00a0le Client\u00a0», mandant,",
        ),
        [("ET", True)],
        _party(
            data.firm,
            data.firm_representative,
            "société d'expertise comptable",
            "ci-après «\u00a0le Cabinet\u00a0», mandataire.",
        ),
    ]


ARTICLE_1_BEFORE_PA = (
    "Le Client donne mandat au Cabinet, qui l'accepte, de désigner en son nom et pour son compte, dans "
    "l'annuaire central de la facturation électronique prévu à l'article 289 bis du code général des "
    "impôts, la plateforme agréée chargée de recevoir ses factures électroniques, à savoir "
)
ARTICLE_1_AFTER_PA = (
    "et de demander à cette plateforme la mise à jour de ses adresses de réception dans l'annuaire, dans "
    "le périmètre défini au bloc\u00a04 de l'accord formel ci-après. À cette fin, le Cabinet transmet à la "
    "plateforme agréée l'accord formel signé par le Client."
)
ARTICLE_2_LIMITS = (
    "Le présent mandat est strictement limité à l'objet défini à l'article 1 (articles 1988 et 1989 du "
    "Code civil). Il ne confère au Cabinet aucun autre pouvoir ; en particulier, il ne l'autorise ni à "
    "émettre, recevoir, accepter ou payer des factures au nom du Client, ni à souscrire en son nom un "
    "contrat ou un service auprès de la plateforme agréée ou d'un tiers. Il ne comporte aucune clause "
    "commerciale et n'emporte, par lui-même, aucun engagement commercial ou financier du Client."
)
ARTICLE_4_REVOCATION = (
    "Le Client peut révoquer le présent mandat à tout moment, sans avoir à en justifier le motif, "
    "conformément à l'article 2004 du Code civil, par notification écrite adressée au Cabinet (courrier "
    "ou courriel). La révocation prend effet à la réception de cette notification et vaut pour l'avenir, "
    "sans retirer par elle-même la désignation inscrite dans l'annuaire. Le Client reste libre de "
    "désigner lui-même, à tout moment, une autre plateforme agréée."
)
ARTICLE_5_PROOF = (
    "Le Cabinet conserve l'exemplaire signé du présent document afin de justifier de son pouvoir. Il le "
    "présente, à leur demande, à la plateforme agréée désignée et à l'administration fiscale. Les données "
    "personnelles qu'il contient ne servent qu'à son exécution et à sa preuve ; l'accès à ces données et "
    "leur rectification se demandent au Cabinet."
)
# Part B may be filed with the platform on its own: it says what the signature does. (No-break
# spaces keep each block's number with its word.)
ACCORD_CONSENT = (
    "Par sa signature au bloc\u00a07, le représentant légal de l'entreprise désigne la plateforme agréée "
    "du bloc\u00a02 pour recevoir ses factures électroniques et lui demande la mise à jour, dans "
    "l'annuaire, des adresses cochées au bloc\u00a04."
)
ARTICLE_6_SIGNATURE = (
    "Le présent document est signé électroniquement. Conformément aux articles 1366 et 1367 du Code "
    "civil, l'écrit sous forme électronique a la même force probante que l'écrit sur support papier, et "
    "la signature électronique consiste en l'usage d'un procédé fiable d'identification garantissant son "
    "lien avec l'acte auquel elle s'attache. La signature apposée par le représentant légal du Client au "
    "bloc\u00a07 de l'accord formel ci-après vaut signature du présent mandat et de l'accord formel, qui "
    "forment un document unique."
)


def delegation_articles(data: MandateDocumentData) -> list[Article]:
    pa = data.platform
    if data.duration_months is None:
        duration = "Il est conclu pour une durée indéterminée."
    else:
        duration = (
            f"Il est conclu pour une durée de {data.duration_months} mois à compter de cette date "
            "et prend fin de plein droit au terme de cette durée."
        )
    if data.effective_from is None:
        effect = [
            ("Le présent mandat prend effet à la date de sa signature électronique (bloc\u00a07). ", False)
        ]
    else:
        effect = [
            ("Le présent mandat prend effet le ", False),
            (fr_date(data.effective_from), True),
            (". ", False),
        ]
    effect.append((duration, False))
    return [
        Article(
            "Article 1 - Objet du mandat",
            [
                (ARTICLE_1_BEFORE_PA, False),
                (pa.name, True),
                (f" ({platform_ids(pa)}), ", False),
                (ARTICLE_1_AFTER_PA, False),
            ],
        ),
        Article("Article 2 - Limites du mandat", [(ARTICLE_2_LIMITS, False)]),
        Article("Article 3 - Prise d'effet et durée", effect),
        Article("Article 4 - Révocation", [(ARTICLE_4_REVOCATION, False)]),
        Article("Article 5 - Conservation, preuve et données personnelles", [(ARTICLE_5_PROOF, False)]),
        Article("Article 6 - Signature électronique", [(ARTICLE_6_SIGNATURE, False)]),
    ]


def scope_lines(siren: str, scope: AddressScope) -> list[tuple[bool, str, str]]:
    """Block 4 checkboxes: (checked, label, address pattern and meaning)."""
    return [
        (scope.main_address, "Adresse principale", f"{siren} (format SIREN)"),
        (
            scope.functional_addresses,
            "Adresses fonctionnelles",
            f"{siren}_XXX (format SIREN_SUFFIXE ; XXX : toutes les adresses de ce type)",
        ),
        (
            scope.establishment_addresses,
            "Adresses d'établissement",
            f"{siren}_XXX (format SIREN_SIRET ; XXX : tous les SIRET existants et futurs)",
        ),
        (
            scope.routing_code_addresses,
            "Adresses par code routage",
            f"{siren}_SIRET_XXX (format SIREN_SIRET_CODEROUTAGE, pour chaque établissement ; "
            "XXX : tous les codes routage existants et futurs)",
        ),
    ]


def platform_rows(platform: PlatformParty) -> list[tuple[str, str]]:
    return [
        ("Raison sociale", platform.name),
        ("SIREN", platform.siren or NOT_GIVEN),
        ("Matricule", platform.matricule or NOT_GIVEN),
    ]


MANDATE_NUMBER_FORMAT = (
    "Format : SIREN de l'entreprise_SIREN (ou matricule) de la plateforme_AAAAMMJJ_compteur"
)


def signatory_rows(data: MandateDocumentData) -> list[tuple[str, str]]:
    rep = data.client_representative
    rows = [("Prénom", rep.first_name), ("Nom", rep.last_name)]
    if rep.birth_name:
        rows.append(("Nom de naissance", rep.birth_name))
    rows.append(("Qualité", capacity(rep)))
    if data.place:
        rows.append(("Fait à", data.place))
    rows.append(
        (
            "Date",
            f"{SIGNATURE_DATE}, inscrite sous la signature (document établi le {fr_date(data.issued_on)})",
        )
    )
    return rows
