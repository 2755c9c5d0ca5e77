//! Country and continent of a client address, from a MaxMind GeoIP2/GeoLite2 Country database.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

/// What a restriction of scope `country` or `continent` compares against (all lower-case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// ISO 3166-1 alpha-2, e.g. `gb`.
    pub country_code: String,
    /// ISO 3166-1 alpha-3, e.g. `gbr`.
    pub country_code3: String,
    /// Country name in the configured language, e.g. `united kingdom`.
    pub country_name: String,
    /// Continent code, e.g. `eu`.
    pub continent_code: String,
    /// Continent name in the configured language, e.g. `europe`.
    pub continent_name: String,
    /// Country name as MaxMind spells it (for activity records).
    pub country_display: String,
}

pub struct GeoIp {
    reader: maxminddb::Reader<Vec<u8>>,
    language: String,
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<Place<'a>>,
    #[serde(borrow, default)]
    continent: Option<Place<'a>>,
}

#[derive(Deserialize)]
struct Place<'a> {
    #[serde(default)]
    iso_code: Option<&'a str>,
    #[serde(default)]
    code: Option<&'a str>,
    #[serde(borrow, default)]
    names: BTreeMap<&'a str, &'a str>,
}

impl GeoIp {
    pub fn open(path: &Path, language: &str) -> anyhow::Result<GeoIp> {
        let reader = maxminddb::Reader::open_readfile(path)
            .map_err(|e| anyhow::anyhow!("geoip.database_path {}: {e}", path.display()))?;
        Ok(GeoIp {
            reader,
            language: language.to_string(),
        })
    }

    /// The location of `ip`, or `None` when the database has no record for it.
    pub fn locate(&self, ip: IpAddr) -> Option<Location> {
        let found = self.reader.lookup(ip).ok()?;
        let record: Record<'_> = found.decode().ok()??;
        let name = |place: &Place<'_>| -> String {
            place
                .names
                .get(self.language.as_str())
                .or_else(|| place.names.get("en"))
                .copied()
                .unwrap_or("")
                .to_string()
        };
        let mut location = Location::default();
        if let Some(country) = &record.country {
            let code = country.iso_code.unwrap_or("");
            location.country_code = code.to_ascii_lowercase();
            location.country_code3 = alpha3(code).unwrap_or("").to_ascii_lowercase();
            location.country_display = name(country);
            location.country_name = location.country_display.to_lowercase();
        }
        if let Some(continent) = &record.continent {
            location.continent_code = continent.code.unwrap_or("").to_ascii_lowercase();
            location.continent_name = name(continent).to_lowercase();
        }
        Some(location)
    }
}

/// ISO 3166-1 alpha-3 for an alpha-2 code (upper-case input).
pub fn alpha3(alpha2: &str) -> Option<&'static str> {
    let alpha2 = alpha2.as_bytes();
    if alpha2.len() != 2 {
        return None;
    }
    ISO_3166
        .split_ascii_whitespace()
        .find(|pair| pair.as_bytes()[..2].eq_ignore_ascii_case(alpha2))
        .map(|pair| &pair[2..])
}

/// Alpha-2 followed by alpha-3 for every ISO 3166-1 country.
const ISO_3166: &str = "
ADAND AEARE AFAFG AGATG AIAIA ALALB AMARM AOAGO AQATA ARARG ASASM ATAUT AUAUS AWABW AXALA AZAZE
BABIH BBBRB BDBGD BEBEL BFBFA BGBGR BHBHR BIBDI BJBEN BLBLM BMBMU BNBRN BOBOL BQBES BRBRA BSBHS
BTBTN BVBVT BWBWA BYBLR BZBLZ CACAN CCCCK CDCOD CFCAF CGCOG CHCHE CICIV CKCOK CLCHL CMCMR CNCHN
COCOL CRCRI CUCUB CVCPV CWCUW CXCXR CYCYP CZCZE DEDEU DJDJI DKDNK DMDMA DODOM DZDZA ECECU EEEST
EGEGY EHESH ERERI ESESP ETETH FIFIN FJFJI FKFLK FMFSM FOFRO FRFRA GAGAB GBGBR GDGRD GEGEO GFGUF
GGGGY GHGHA GIGIB GLGRL GMGMB GNGIN GPGLP GQGNQ GRGRC GSSGS GTGTM GUGUM GWGNB GYGUY HKHKG HMHMD
HNHND HRHRV HTHTI HUHUN IDIDN IEIRL ILISR IMIMN ININD IOIOT IQIRQ IRIRN ISISL ITITA JEJEY JMJAM
JOJOR JPJPN KEKEN KGKGZ KHKHM KIKIR KMCOM KNKNA KPPRK KRKOR KWKWT KYCYM KZKAZ LALAO LBLBN LCLCA
LILIE LKLKA LRLBR LSLSO LTLTU LULUX LVLVA LYLBY MAMAR MCMCO MDMDA MEMNE MFMAF MGMDG MHMHL MKMKD
MLMLI MMMMR MNMNG MOMAC MPMNP MQMTQ MRMRT MSMSR MTMLT MUMUS MVMDV MWMWI MXMEX MYMYS MZMOZ NANAM
NCNCL NENER NFNFK NGNGA NINIC NLNLD NONOR NPNPL NRNRU NUNIU NZNZL OMOMN PAPAN PEPER PFPYF PGPNG
PHPHL PKPAK PLPOL PMSPM PNPCN PRPRI PSPSE PTPRT PWPLW PYPRY QAQAT REREU ROROU RSSRB RURUS RWRWA
SASAU SBSLB SCSYC SDSDN SESWE SGSGP SHSHN SISVN SJSJM SKSVK SLSLE SMSMR SNSEN SOSOM SRSUR SSSSD
STSTP SVSLV SXSXM SYSYR SZSWZ TCTCA TDTCD TFATF TGTGO THTHA TJTJK TKTKL TLTLS TMTKM TNTUN TOTON
TRTUR TTTTO TVTUV TWTWN TZTZA UAUKR UGUGA UMUMI USUSA UYURY UZUZB VAVAT VCVCT VEVEN VGVGB VIVIR
VNVNM VUVUT WFWLF WSWSM YEYEM YTMYT ZAZAF ZMZMB ZWZWE
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha3_covers_known_codes() {
        assert_eq!(alpha3("UA"), Some("UKR"));
        assert_eq!(alpha3("US"), Some("USA"));
        assert_eq!(alpha3("gb"), Some("GBR"));
        assert_eq!(alpha3("ZW"), Some("ZWE"));
        assert_eq!(alpha3("XX"), None);
        assert_eq!(ISO_3166.split_ascii_whitespace().count(), 249);
    }

    #[test]
    fn locates_addresses_of_the_test_database() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/GeoLite2-Country-Test.mmdb");
        let geo = GeoIp::open(&path, "en").unwrap();
        let gb = geo.locate("81.2.69.142".parse().unwrap()).unwrap();
        assert_eq!(gb.country_code, "gb");
        assert_eq!(gb.country_code3, "gbr");
        assert_eq!(gb.country_name, "united kingdom");
        assert_eq!(gb.continent_code, "eu");
        assert_eq!(gb.continent_name, "europe");
        let jp = geo.locate("2001:218::1".parse().unwrap()).unwrap();
        assert_eq!(jp.country_code, "jp");
        assert_eq!(jp.continent_code, "as");
        assert!(geo.locate("127.0.0.1".parse().unwrap()).is_none());
    }
}
