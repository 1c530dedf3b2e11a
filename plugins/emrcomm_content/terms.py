"""The project's own core term lists, English and Quebec French.

Kinds that fire on their own: ``medication``, ``condition``, ``test``, ``procedure``,
``specialty``. Kinds that fire only in context (see clinical.py): ``result`` (a result word next
to a test), ``result_weak`` (``high``, ``bas``: only next to a named test or condition) and
``test_generic`` (``results``, ``analyse``: a test only next to a result or value), ``body``
with ``symptom`` / ``symptom_after`` (a symptom word next to a part of the body: "leg pain",
"douleur au genou"; neither alone).

Written in lower case unless the capitals matter: a term with a capital matches only in that
exact case (``ASA`` must not fire inside "Lasagna" or on "asa"). Accents are optional in the
text (``diabete`` matches ``diabète``), and a plural ``s`` is accepted, so neither is listed.
Deliberately absent: words every clinic message uses (appointment, doctor, clinic, visit,
follow-up, prescription / ordonnance, medication / médicament, pharmacy, lab), and words of
everyday chat that are rarely clinical there (pain, sick, cold, flu, fever, screening, level).

These lists are the core and are authoritative: the lexicons derived from packaged sources
(sources.py: drug names, ICD-10-CM conditions) add the long tail, filtered for everyday words,
but never remove a term listed here; :data:`NOT_CLINICAL_TERMS` removes packaged terms.
"""

from __future__ import annotations

from emrcomm_content.lexicon import Lexicon

MEDICATIONS_EN = [
    # analgesics, anti-inflammatories, opioids
    "acetaminophen", "paracetamol", "tylenol", "ibuprofen", "advil", "motrin", "naproxen", "aleve",
    "naprosyn", "aspirin", "ASA", "acetylsalicylic acid", "entrophen", "celecoxib", "celebrex",
    "diclofenac", "voltaren", "arthrotec", "meloxicam", "mobicox", "ketorolac", "indomethacin",
    "codeine", "tylenol 3", "morphine", "hydromorphone", "dilaudid", "hydromorph contin",
    "oxycodone", "oxycontin", "oxyneo", "percocet", "hydrocodone", "vicodin", "fentanyl",
    "tramadol", "tramacet", "ultram", "tapentadol", "nucynta", "methadone", "methadose",
    "buprenorphine", "suboxone", "sublocade", "naloxone", "narcan", "naltrexone", "opioid",
    "opiate", "nsaid", "painkiller",
    # diabetes and weight
    "metformin", "glucophage", "insulin", "insulin glargine", "lantus", "basaglar", "toujeo",
    "humalog", "novolog", "novorapid", "fiasp", "tresiba", "levemir", "humulin", "novolin",
    "glyburide", "gliclazide", "diamicron", "glipizide", "glimepiride", "sitagliptin", "januvia",
    "janumet", "linagliptin", "trajenta", "jentadueto", "saxagliptin", "empagliflozin", "jardiance",
    "synjardy", "dapagliflozin", "farxiga", "forxiga", "xigduo", "canagliflozin", "invokana",
    "semaglutide", "ozempic", "wegovy", "rybelsus", "liraglutide", "victoza", "saxenda",
    "dulaglutide", "trulicity", "tirzepatide", "mounjaro", "zepbound", "exenatide", "pioglitazone",
    "acarbose", "repaglinide", "glucagon", "contrave", "orlistat", "xenical", "phentermine",
    # lipids
    "atorvastatin", "lipitor", "rosuvastatin", "crestor", "simvastatin", "zocor", "pravastatin",
    "lovastatin", "statin", "ezetimibe", "ezetrol", "zetia", "fenofibrate", "lipidil",
    "gemfibrozil", "evolocumab", "repatha",
    # blood pressure, heart
    "lisinopril", "zestril", "prinivil", "ramipril", "altace", "enalapril", "vasotec",
    "perindopril", "coversyl", "quinapril", "accupril", "benazepril", "captopril", "trandolapril",
    "losartan", "cozaar", "valsartan", "diovan", "irbesartan", "avapro", "candesartan", "atacand",
    "telmisartan", "micardis", "olmesartan", "olmetec", "benicar", "amlodipine", "norvasc",
    "nifedipine", "adalat", "diltiazem", "cardizem", "verapamil", "felodipine", "metoprolol",
    "lopressor", "toprol", "atenolol", "tenormin", "bisoprolol", "monocor", "carvedilol",
    "propranolol", "inderal", "nadolol", "labetalol", "nebivolol", "sotalol", "hydrochlorothiazide",
    "hctz", "chlorthalidone", "indapamide", "furosemide", "lasix", "spironolactone", "aldactone",
    "eplerenone", "torsemide", "bumetanide", "hydralazine", "clonidine", "doxazosin", "terazosin",
    "prazosin", "sacubitril", "entresto", "digoxin", "amiodarone", "nitroglycerin", "nitro spray",
    "isosorbide", "beta blocker", "blood thinner", "diuretic", "water pill",
    # anticoagulants, antiplatelets
    "warfarin", "coumadin", "apixaban", "eliquis", "rivaroxaban", "xarelto", "dabigatran",
    "pradaxa", "edoxaban", "lixiana", "heparin", "enoxaparin", "lovenox", "dalteparin", "fragmin",
    "clopidogrel", "plavix", "ticagrelor", "brilinta", "prasugrel",
    # stomach and bowel
    "omeprazole", "losec", "prilosec", "pantoprazole", "pantoloc", "tecta", "protonix",
    "esomeprazole", "nexium", "lansoprazole", "prevacid", "rabeprazole", "pariet",
    "dexlansoprazole", "dexilant", "famotidine", "pepcid", "ranitidine", "zantac", "ondansetron",
    "zofran", "metoclopramide", "domperidone", "loperamide", "imodium", "docusate", "lactulose",
    "bisacodyl", "dulcolax", "picosalax", "pico salax", "colyte", "golytely", "mesalamine",
    "pentasa", "salofalk", "sulfasalazine", "buscopan", "laxative",
    # thyroid and hormones
    "levothyroxine", "synthroid", "eltroxin", "methimazole", "tapazole", "propylthiouracil",
    "estradiol", "estrogen", "estrogel", "premarin", "progesterone", "prometrium",
    "medroxyprogesterone", "depo provera", "provera", "testosterone", "androgel", "finasteride",
    "proscar", "propecia", "dutasteride", "avodart", "tamsulosin", "flomax",
    "hormone replacement", "hormone therapy", "HRT",
    # contraception and sexual health
    "levonorgestrel", "norethindrone", "birth control", "birth control pill", "contraceptive",
    "contraception", "morning after pill", "emergency contraception", "yaz", "yasmin", "alesse",
    "diane 35", "mirena", "kyleena", "nexplanon", "nuvaring", "iud", "sildenafil", "viagra",
    "tadalafil", "cialis", "vardenafil", "levitra", "PrEP", "PEP", "truvada", "descovy",
    "biktarvy", "tenofovir", "emtricitabine", "dolutegravir", "antiretroviral", "sofosbuvir",
    "epclusa", "harvoni", "maviret",
    # mental health, sleep, ADHD
    "sertraline", "zoloft", "fluoxetine", "prozac", "citalopram", "celexa", "escitalopram",
    "cipralex", "lexapro", "paroxetine", "paxil", "venlafaxine", "effexor", "desvenlafaxine",
    "pristiq", "duloxetine", "cymbalta", "bupropion", "wellbutrin", "zyban", "mirtazapine",
    "remeron", "trazodone", "desyrel", "amitriptyline", "elavil", "nortriptyline",
    "vortioxetine", "trintellix", "lithium", "lamotrigine", "lamictal", "valproate",
    "valproic acid", "divalproex", "epival", "depakote", "carbamazepine", "tegretol",
    "quetiapine", "seroquel", "olanzapine", "zyprexa", "risperidone", "risperdal", "aripiprazole",
    "abilify", "rexulti", "vraylar", "haloperidol", "clozapine", "lurasidone", "latuda",
    "paliperidone", "invega", "ziprasidone", "lorazepam", "ativan", "clonazepam", "rivotril",
    "klonopin", "diazepam", "valium", "alprazolam", "xanax", "temazepam", "oxazepam", "zopiclone",
    "imovane", "zolpidem", "ambien", "sublinox", "methylphenidate", "ritalin", "concerta",
    "biphentin", "foquest", "lisdexamfetamine", "vyvanse", "amphetamine", "adderall",
    "dextroamphetamine", "dexedrine", "atomoxetine", "strattera", "guanfacine", "intuniv",
    "antidepressant", "antipsychotic", "benzodiazepine", "ssri", "sleeping pill",
    # neurology, pain, muscle
    "gabapentin", "neurontin", "pregabalin", "lyrica", "topiramate", "topamax", "levetiracetam",
    "keppra", "phenytoin", "dilantin", "sumatriptan", "imitrex", "rizatriptan", "maxalt",
    "zolmitriptan", "zomig", "donepezil", "aricept", "memantine", "ebixa", "levodopa",
    "carbidopa", "sinemet", "baclofen", "cyclobenzaprine", "flexeril", "methocarbamol", "robaxin",
    "tizanidine", "botox",
    # lungs, allergy, steroids
    "salbutamol", "albuterol", "ventolin", "fluticasone", "flovent", "flonase", "avamys",
    "budesonide", "pulmicort", "symbicort", "advair", "breo", "trelegy", "formoterol",
    "salmeterol", "tiotropium", "spiriva", "montelukast", "singulair", "inhaler",
    "prednisone", "prednisolone", "methylprednisolone", "dexamethasone", "hydrocortisone",
    "cortisone", "steroid", "epinephrine", "epipen", "cetirizine", "reactine", "zyrtec",
    "loratadine", "claritin", "desloratadine", "aerius", "fexofenadine", "allegra",
    "diphenhydramine", "benadryl", "mometasone", "nasonex",
    # infections
    "amoxicillin", "amoxil", "clavulin", "augmentin", "penicillin", "cephalexin", "keflex",
    "cefuroxime", "ceftriaxone", "cefixime", "cefadroxil", "azithromycin", "zithromax", "z pack",
    "clarithromycin", "biaxin", "erythromycin", "doxycycline", "minocycline", "tetracycline",
    "ciprofloxacin", "cipro", "levofloxacin", "moxifloxacin", "nitrofurantoin", "macrobid",
    "trimethoprim", "sulfamethoxazole", "septra", "bactrim", "metronidazole", "flagyl",
    "clindamycin", "vancomycin", "fluconazole", "diflucan", "terbinafine", "lamisil", "nystatin",
    "clotrimazole", "canesten", "monistat", "valacyclovir", "valtrex", "acyclovir", "zovirax",
    "famciclovir", "oseltamivir", "tamiflu", "paxlovid", "nirmatrelvir", "hydroxychloroquine",
    "plaquenil", "ivermectin", "permethrin", "antibiotic", "antiviral", "antifungal",
    # bones, joints, immune, cancer, skin
    "alendronate", "fosamax", "risedronate", "actonel", "zoledronic acid", "aclasta",
    "denosumab", "prolia", "calcitonin", "methotrexate", "adalimumab", "humira", "etanercept",
    "enbrel", "infliximab", "remicade", "rituximab", "ustekinumab", "stelara", "dupilumab",
    "dupixent", "tofacitinib", "xeljanz", "azathioprine", "imuran", "tacrolimus", "cyclosporine",
    "mycophenolate", "allopurinol", "colchicine", "febuxostat", "tamoxifen", "letrozole",
    "anastrozole", "arimidex", "pembrolizumab", "keytruda", "imatinib", "isotretinoin",
    "accutane", "epuris", "clarus", "tretinoin", "biologic",
    # addiction, smoking cessation
    "varenicline", "champix", "chantix", "nicotine replacement", "nicotine patch", "disulfiram",
    "antabuse", "acamprosate",
    # vaccines that reveal a condition or exposure
    "hpv vaccine", "gardasil", "hepatitis b vaccine", "rabies vaccine",
]

CONDITIONS_EN = [
    "diabetes", "diabetic", "prediabetes", "prediabetic", "type 1 diabetes", "type 2 diabetes",
    "gestational diabetes", "hypoglycemia", "hyperglycemia", "T1DM", "T2DM", "T1D", "T2D", "DM1", "DM2",
    "cancer", "tumor", "tumour", "malignant", "malignancy", "carcinoma", "melanoma", "lymphoma",
    "leukemia", "leukaemia", "myeloma", "sarcoma", "glioma", "mesothelioma", "metastasis",
    "metastases", "metastatic", "precancerous", "dysplasia", "abnormal cells",
    "hiv", "hiv positive", "AIDS", "hepatitis", "hep b", "hep c", "cirrhosis", "fatty liver",
    "liver disease", "pregnancy", "pregnant", "miscarriage", "ectopic", "stillbirth",
    "infertility", "infertile", "depression", "major depressive", "anxiety disorder",
    "panic disorder", "panic attack", "bipolar", "schizophrenia", "schizoaffective", "psychosis",
    "psychotic", "suicidal", "suicide", "self harm", "eating disorder", "anorexia", "bulimia",
    "binge eating", "adhd", "autism", "autistic", "asperger", "dementia", "alzheimer",
    "alzheimers", "parkinson", "parkinsons", "epilepsy", "seizure", "stroke", "heart attack",
    "heart failure", "heart disease", "myocardial infarction", "angina", "arrhythmia",
    "atrial fibrillation", "afib", "a fib", "hypertension", "high blood pressure", "hypotension",
    "cholesterol", "high cholesterol", "hyperlipidemia", "asthma", "copd", "emphysema",
    "bronchitis", "pneumonia", "tuberculosis", "TB", "covid", "covid 19", "coronavirus",
    "influenza", "rsv", "strep", "strep throat", "STI", "STD", "sexually transmitted",
    "chlamydia", "gonorrhea", "gonorrhoea", "syphilis", "herpes", "genital herpes", "hpv",
    "genital warts", "trichomoniasis", "trichomonas", "uti", "urinary tract infection",
    "bladder infection", "kidney infection", "yeast infection", "bacterial vaginosis",
    "pelvic inflammatory", "kidney disease", "kidney failure", "renal failure", "ckd",
    "hypothyroidism", "hyperthyroidism", "thyroid", "graves disease", "hashimoto", "arthritis",
    "rheumatoid", "osteoarthritis", "osteoporosis", "osteopenia", "gout", "lupus",
    "multiple sclerosis", "crohn", "crohns", "colitis", "ulcerative colitis", "celiac",
    "coeliac", "ibs", "irritable bowel", "GERD", "acid reflux", "ulcer", "hernia", "gallstones",
    "appendicitis", "diverticulitis", "hemorrhoids", "haemorrhoids", "anemia", "anaemia",
    "sickle cell", "hemophilia", "thalassemia", "obesity", "obese", "morbidly obese",
    "erectile dysfunction", "impotence", "incontinence", "overactive bladder", "prostate",
    "enlarged prostate", "endometriosis", "pcos", "polycystic", "menopause", "perimenopause",
    "infection", "infected", "sepsis", "concussion", "fracture", "addiction",
    "substance use", "alcoholism", "alcohol use disorder", "opioid use disorder", "overdose",
    "withdrawal symptoms", "glaucoma", "cataract", "macular degeneration", "sleep apnea",
    "sleep apnoea", "insomnia", "migraine", "shingles", "measles", "mumps", "chickenpox",
    "chicken pox", "whooping cough", "pertussis", "mononucleosis", "lyme disease", "mpox",
    "monkeypox", "scabies", "eczema", "psoriasis", "rosacea", "dermatitis", "cellulitis", "cyst",
    "polyp", "nodule", "lesion", "diagnosis", "diagnosed", "diagnoses", "prognosis", "syndrome",
    "disorder", "disease", "chronic pain", "chronic illness", "terminal illness", "terminally ill",
    "palliative", "mental health", "mental illness", "sexual health", "ptsd", "ocd", "dvt",
    "blood clot", "embolism", "aneurysm", "transgender", "gender dysphoria", "allergic reaction",
    "anaphylaxis", "food allergy", "urinary", "vaginal", "genital", "rectal", "urine", "semen",
    "sperm", "fetal", "fetus", "trimester", "prenatal", "antenatal", "postpartum", "postnatal",
    "pap smear", "abnormal pap", "cervical cancer", "breast cancer", "prostate cancer",
    "colon cancer", "lung cancer", "skin cancer", "neuropathy", "retinopathy", "vertigo",
    "tinnitus", "hearing loss", "paralysis", "amputee", "disability",
]

TESTS_EN = [
    "a1c", "hba1c", "hemoglobin a1c", "haemoglobin a1c", "glycated hemoglobin", "INR", "PSA",
    "TSH", "CBC", "complete blood count", "ldl", "hdl", "triglycerides", "lipid panel",
    "lipid profile", "creatinine", "egfr", "kidney function", "liver function", "liver enzymes",
    "alt level", "hemoglobin", "haemoglobin", "ferritin", "iron levels", "b12 level",
    "vitamin d level", "blood sugar", "blood glucose", "fasting glucose", "glucose tolerance",
    "ecg", "ekg", "electrocardiogram", "eeg", "echocardiogram", "holter", "stress test",
    "ct scan", "cat scan", "pet scan", "CT", "mri", "x ray", "xray", "ultrasound", "sonogram",
    "mammogram", "mammography", "bone density", "dexa", "pap test", "pap smear", "hpv test",
    "colposcopy", "biopsy", "biopsies", "urine test", "urinalysis", "urine sample", "urine culture", "stool test",
    "stool sample", "FIT test", "fit kit", "throat swab", "throat culture", "nasal swab",
    "swab test", "strep test", "pregnancy test", "sti test", "std test", "hiv test", "sti testing",
    "std testing", "hiv testing", "genetic test", "genetic testing", "prenatal screening",
    "amniocentesis", "semen analysis", "sperm count", "pathology", "pathology report",
    "spirometry", "allergy test", "skin test", "tb test", "viral load", "cd4", "radiology report",
    "mri results", "cholesterol test", "thyroid test", "psa test", "pcr test", "covid test",
    "rapid test", "antibody test", "culture results",
    # blood count components, as results are written to patients
    "white blood cell", "white blood cell count", "white cell count", "white cells", "wbc",
    "red blood cell", "red blood cell count", "red cells", "rbc", "platelet count", "platelets",
    "neutrophils", "lymphocytes", "hematocrit", "haematocrit",
]

TESTS_GENERIC_EN = [
    "result", "results", "test", "tests", "test result", "lab result", "lab results", "labs",
    "lab test", "scan", "scans", "screen", "screening", "report", "levels",
    # a blood test everyone has: its requisition or appointment says nothing; its result does
    "blood test", "blood tests", "bloodwork", "blood work", "blood sample", "blood draw",
]

RESULTS_EN = [
    "positive", "negative", "abnormal", "normal", "elevated", "borderline", "detected",
    "not detected", "undetected", "undetectable", "reactive", "non reactive", "nonreactive",
    "inconclusive", "unremarkable", "out of range", "came back positive", "came back negative",
    "came back abnormal", "came back normal", "abnormality", "abnormalities", "malignant",
    "benign",
]

RESULTS_WEAK_EN = ["high", "low", "raised", "too high", "too low"]

PROCEDURES_EN = [
    "colonoscopy", "endoscopy", "gastroscopy", "sigmoidoscopy", "bronchoscopy", "cystoscopy",
    "vasectomy", "tubal ligation", "hysterectomy", "mastectomy", "lumpectomy", "abortion",
    "medical abortion", "termination of pregnancy", "pregnancy termination", "D&C",
    "dilation and curettage", "iud insertion", "iud removal", "surgery", "surgical",
    "chemotherapy", "chemo", "radiation therapy", "radiotherapy", "dialysis", "transplant",
    "transfusion", "infusion", "cataract surgery", "knee replacement", "hip replacement",
    "bypass surgery", "angioplasty", "stent", "pacemaker", "catheter", "circumcision",
    "liposuction", "psychotherapy", "psych eval", "psych evaluation", "psych assessment", "psych consult",
    "cognitive behavioural therapy", "cognitive behavioral therapy",
    "cbt", "detox", "ivf", "in vitro fertilization", "in vitro fertilisation", "egg retrieval",
    "embryo transfer", "insemination", "iui", "amputation", "mohs", "cryotherapy",
    "wart removal", "skin tag removal", "mole removal", "excision", "anesthesia", "anaesthesia",
    "sedation", "prep solution", "bowel prep", "pelvic exam", "breast exam", "prostate exam",
    "rectal exam", "c section", "cesarean", "caesarean", "induction of labour",
    "induction of labor", "epidural", "gender affirming", "top surgery", "electroconvulsive",
    "methadone treatment", "opioid agonist", "wound care", "dressing change", "suture removal",
    "stitches removed", "cast removal", "allergy shots", "b12 injection", "injection",
]

SPECIALTIES_EN = [
    "oncology", "oncologist", "cancer centre", "cancer center", "cancer clinic", "chemo unit",
    "psychiatry", "psychiatrist", "psychiatric", "psychologist", "psychology", "psychotherapist",
    "mental health clinic", "addiction clinic", "addictions", "methadone clinic", "opioid clinic",
    "rapid access addiction", "fertility clinic", "fertility", "ivf clinic", "sexual health clinic",
    "sti clinic", "std clinic", "hiv clinic", "abortion clinic", "womens health clinic",
    "infectious disease", "infectious diseases", "hepatology", "hepatologist", "gastroenterology",
    "gastroenterologist", "gi clinic", "cardiology", "cardiologist", "nephrology",
    "nephrologist", "urology", "urologist", "gynecology", "gynaecology", "gynecologist",
    "gynaecologist", "obstetrics", "obstetrician", "ob gyn", "obgyn", "endocrinology",
    "endocrinologist", "neurology", "neurologist", "dermatology", "dermatologist",
    "rheumatology", "rheumatologist", "hematology", "haematology", "hematologist",
    "respirology", "respirologist", "pulmonology", "pulmonologist", "palliative care", "hospice",
    "dialysis unit", "transplant clinic", "memory clinic", "diabetes clinic",
    "eating disorder clinic", "detox centre", "detox center", "rehab centre", "rehab center",
    "sleep clinic", "pain clinic", "gender clinic", "midwife", "midwives", "maternity clinic",
    "breast clinic", "colposcopy clinic", "genetics clinic", "genetic counselling",
    "genetic counseling", "anticoagulation clinic", "inr clinic", "heart function clinic",
    "sleep lab", "crisis line", "suicide prevention",
]

MEDICATIONS_FR = [
    "acetaminophene", "paracétamol", "ibuprofène", "naproxène", "acide acetylsalicylique",
    "codéine", "morphine", "hydromorphone", "oxycodone", "méthadone", "buprénorphine",
    "naloxone", "opioïde", "opiacé", "metformine", "insuline", "glargine", "gliclazide",
    "sitagliptine", "empagliflozine", "dapagliflozine", "sémaglutide", "liraglutide",
    "atorvastatine", "rosuvastatine", "simvastatine", "pravastatine", "statine", "ézétimibe",
    "amlodipine", "ramipril", "périndopril", "hydrochlorothiazide", "furosémide",
    "spironolactone", "métoprolol", "bisoprolol", "warfarine", "apixaban", "rivaroxaban",
    "héparine", "clopidogrel", "anticoagulant", "oméprazole", "pantoprazole", "ésoméprazole",
    "lévothyroxine", "œstrogène", "oestrogène", "progestérone", "testostérone",
    "contraceptif", "contraceptive", "contraception", "pilule contraceptive",
    "pilule du lendemain", "contraception d'urgence", "stérilet", "sertraline", "fluoxétine",
    "citalopram", "escitalopram", "venlafaxine", "bupropion", "quétiapine", "olanzapine",
    "rispéridone", "aripiprazole", "lorazépam", "clonazépam", "diazépam", "alprazolam",
    "zopiclone", "méthylphénidate", "lisdexamfétamine", "lithium", "antidépresseur",
    "antipsychotique", "anxiolytique", "somnifère", "benzodiazépine", "gabapentine",
    "prégabaline", "salbutamol", "inhalateur", "prednisone", "cortisone",
    "corticostéroïde", "stéroïde", "épinéphrine", "amoxicilline", "pénicilline", "céphalexine",
    "azithromycine", "clarithromycine", "doxycycline", "ciprofloxacine", "nitrofurantoïne",
    "métronidazole", "clindamycine", "fluconazole", "valacyclovir", "antibiotique", "antiviral",
    "antifongique", "méthotrexate", "tamoxifène", "trithérapie", "antirétroviral",
    "prophylaxie pré exposition", "laxatif", "diurétique",
]

CONDITIONS_FR = [
    "diabète", "diabétique", "prédiabète", "diabète de type 1", "diabète de type 2",
    "diabète gestationnel", "DT1", "DT2", "DB1", "DB2", "hypoglycémie", "hyperglycémie", "cancer", "cancer du sein",
    "cancer de la prostate", "cancer du côlon", "cancer colorectal", "cancer du poumon",
    "cancer du col", "cancer de la peau", "tumeur", "maligne", "métastase", "métastatique",
    "leucémie", "lymphome", "mélanome", "myélome", "sarcome", "carcinome", "précancéreux",
    "précancéreuse", "cellules anormales", "dysplasie", "VIH", "sida", "séropositif",
    "séropositive", "hépatite", "cirrhose", "stéatose", "maladie du foie", "grossesse",
    "enceinte", "fausse couche", "grossesse ectopique", "infertilité", "dépression",
    "dépressif", "dépressive", "trouble anxieux", "trouble panique", "crise de panique",
    "bipolaire", "trouble bipolaire", "schizophrénie", "psychose", "psychotique", "suicide",
    "suicidaire", "automutilation", "trouble alimentaire", "anorexie", "boulimie",
    "tdah", "autisme", "autiste", "démence", "alzheimer", "parkinson", "épilepsie",
    "convulsion", "AVC", "accident vasculaire", "crise cardiaque", "infarctus",
    "insuffisance cardiaque", "maladie cardiaque", "angine de poitrine", "arythmie",
    "fibrillation auriculaire", "hypertension", "haute pression", "hypotension", "cholestérol",
    "hypercholestérolémie", "asthme", "MPOC", "emphysème", "bronchite", "pneumonie",
    "tuberculose", "covid", "coronavirus", "influenza", "streptocoque", "ITS", "ITSS", "MTS",
    "infection transmissible sexuellement", "infections transmissibles sexuellement",
    "maladie transmise sexuellement", "chlamydia", "gonorrhée", "syphilis", "herpès",
    "herpès génital", "VPH", "condylome", "vaginose", "infection urinaire", "cystite",
    "insuffisance rénale", "maladie rénale", "hypothyroïdie", "hyperthyroïdie", "thyroïde",
    "arthrite", "polyarthrite", "arthrose", "ostéoporose", "lupus", "sclérose en plaques",
    "maladie de crohn", "crohn", "colite", "colite ulcéreuse", "maladie cœliaque", "cœliaque",
    "côlon irritable", "reflux gastrique", "reflux gastro œsophagien", "ulcère", "hernie",
    "calculs biliaires", "appendicite", "diverticulite", "hémorroïdes", "anémie", "drépanocytose",
    "hémophilie", "obésité", "obèse", "dysfonction érectile", "impuissance", "incontinence",
    "prostate", "endométriose", "ovaires polykystiques", "ménopause", "préménopause",
    "périménopause", "infection", "infecté", "infectée", "septicémie", "commotion cérébrale",
    "fracture", "dépendance aux opioïdes", "toxicomanie", "alcoolisme", "trouble lié à l'usage",
    "surdose", "sevrage", "glaucome", "cataracte", "dégénérescence maculaire",
    "apnée du sommeil", "insomnie", "migraine", "zona", "rougeole", "oreillons", "varicelle",
    "coqueluche", "mononucléose", "maladie de lyme", "variole simienne", "eczéma",
    "psoriasis", "rosacée", "dermatite", "cellulite infectieuse", "kyste", "polype", "nodule",
    "lésion", "diagnostic", "diagnostiqué", "diagnostiquée", "pronostic", "syndrome",
    "maladie chronique", "douleur chronique", "maladie mentale", "santé mentale",
    "santé sexuelle", "maladie grave", "phase terminale", "soins de fin de vie", "palliatif",
    "palliatifs", "trouble de stress post traumatique", "TSPT", "TOC", "thrombose", "phlébite",
    "embolie", "anévrisme", "caillot", "transgenre", "dysphorie de genre", "réaction allergique",
    "anaphylaxie", "urinaire", "vaginal", "vaginale", "génital", "génitale", "rectal", "urine",
    "sperme", "fœtus", "foetal", "fœtal", "prénatal", "prénatale", "postnatal", "post partum",
    "neuropathie", "rétinopathie", "vertige", "acouphène", "surdité", "paralysie", "handicap",
]

TESTS_FR = [
    "analyse d'urine",
    "analyses d'urine", "échantillon d'urine", "culture d'urine", "test de grossesse",
    "test de dépistage", "dépistage", "glycémie", "hémoglobine glyquée", "APS", "FSC",
    "formule sanguine", "bilan lipidique", "bilan thyroïdien", "fonction rénale",
    "fonction hépatique", "enzymes hépatiques", "créatinine", "radiographie", "rayons x",
    "radio pulmonaire", "échographie", "écho cardiaque", "échocardiographie", "mammographie",
    "IRM", "tomodensitométrie", "TDM", "scintigraphie", "ostéodensitométrie",
    "densité osseuse", "test pap", "test de pap", "cytologie", "frottis", "coloscopie",
    "colposcopie", "biopsie", "électrocardiogramme", "holter", "épreuve d'effort",
    "spirométrie", "test d'allergie", "test génétique", "dépistage prénatal", "amniocentèse",
    "globules blancs", "globules rouges", "plaquettes", "neutrophiles", "lymphocytes", "hématocrite",
    "spermogramme", "pathologie", "rapport de pathologie", "charge virale", "test covid",
    "test pcr", "test rapide", "test de dépistage des its", "dépistage des itss",
    "recherche de sang occulte", "test immunochimique",
]

TESTS_GENERIC_FR = [
    "résultat", "résultats", "analyse", "analyses", "test", "tests", "examen", "examens",
    "bilan", "prélèvement", "radio",
    "prise de sang", "prises de sang", "analyse de sang", "analyses de sang", "analyse sanguine",
    "analyses sanguines", "bilan sanguin", "prélèvement sanguin",
]

RESULTS_FR = [
    "positif", "positive", "positifs", "positives", "négatif", "négative", "négatifs",
    "négatives", "anormal", "anormale", "anormaux", "anormales", "normal", "normale", "normaux",
    "normales", "élevé", "élevée", "élevés", "élevées", "détecté", "détectée",
    "non détecté", "indétectable", "réactif", "non réactif", "non concluant", "inquiétant",
    "anomalie", "anomalies", "bénin", "bénigne",
]

RESULTS_WEAK_FR = ["haut", "haute", "bas", "basse", "faible", "trop haut", "trop bas", "trop basse"]

PROCEDURES_FR = [
    "gastroscopie", "endoscopie", "cystoscopie", "bronchoscopie", "vasectomie",
    "ligature des trompes", "hystérectomie", "mastectomie", "tumorectomie", "avortement",
    "interruption de grossesse", "interruption volontaire de grossesse", "IVG",
    "pose de stérilet", "insertion de stérilet", "chirurgie", "opération chirurgicale",
    "chimiothérapie", "chimio", "radiothérapie", "dialyse", "hémodialyse", "greffe",
    "transplantation", "transfusion", "perfusion", "chirurgie de la cataracte",
    "prothèse de la hanche", "prothèse du genou", "pontage", "angioplastie",
    "stimulateur cardiaque", "cathéter", "circoncision", "psychothérapie", "désintoxication",
    "FIV", "fécondation in vitro", "insémination", "procréation assistée", "amputation",
    "cryothérapie", "anesthésie", "sédation", "préparation intestinale", "examen pelvien",
    "examen gynécologique", "toucher rectal", "césarienne", "accouchement", "péridurale",
    "traitement de substitution", "soins de plaie", "retrait des points", "injection",
]

SPECIALTIES_FR = [
    "oncologie", "oncologue", "cancérologie", "centre de cancérologie", "psychiatrie",
    "psychiatre", "psychiatrique", "psychologue", "psychothérapeute", "clinique de fertilité",
    "fertilité", "clinique de méthadone", "clinique de santé sexuelle", "clinique des itss",
    "clinique de planification", "planning des naissances", "maladies infectieuses",
    "microbiologie infectiologie", "infectiologie", "hépatologie", "gastro entérologie",
    "gastro entérologue", "gastroentérologue", "cardiologie", "cardiologue", "néphrologie",
    "néphrologue", "urologie", "urologue", "gynécologie", "gynécologue", "obstétrique",
    "obstétricien", "obstétricienne", "endocrinologie", "endocrinologue", "neurologie",
    "neurologue", "dermatologie", "dermatologue", "rhumatologie", "rhumatologue",
    "hématologie", "hématologue", "pneumologie", "pneumologue", "soins palliatifs",
    "unité de dialyse", "clinique de la mémoire", "clinique du diabète",
    "clinique de la douleur", "clinique du sommeil", "sage femme", "sages femmes",
    "centre de réadaptation en dépendance", "clinique du sein", "génétique médicale",
    "clinique d'anticoagulothérapie", "clinique d'anticoagulation", "centre de crise",
]

# Words about being ill or treated that are clinical whatever the illness, and the abbreviations
# of common psychiatric and developmental diagnoses (in capitals only: "ODD", not "odd").
GENERAL_EN = [
    "symptom", "symptomatic", "asymptomatic", "side effect", "side effects", "adverse reaction",
    "illness", "contagious", "contagion", "infectious", "dosage", "relapse", "flare up", "remission",
    "ODD", "GAD", "MDD", "BPD", "ASD", "OUD", "IBD",
]
GENERAL_FR = [
    "symptôme", "symptomatique", "asymptomatique", "effet secondaire", "effets secondaires",
    "effet indésirable", "effets indésirables", "contagieux", "contagieuse", "posologie", "rechute",
    "rémission",
]

# A part of the body (or a bodily function) next to a symptom word is clinical: "leg pain",
# "pain in my knee", "swallowing problems", "douleur au genou", "mal de dos". Neither is
# clinical alone. A "symptom" may stand right after the body part or before it, linked by a
# preposition (SYMPTOM_LINKS) and at most three words away: "pain in my lower back", never
# "the pain came back"; a "symptom_after" only right after it ("back problems", never
# "no problem, back at 5"). Short words that are also words of the other language
# ("os", "main", "bras", "dent", "rein") are left out.
BODY_EN = [
    "head", "neck", "back", "lower back", "upper back", "chest", "stomach", "belly", "abdomen",
    "abdominal", "leg", "knee", "hip", "shoulder", "arm", "elbow", "wrist", "hand", "foot", "feet",
    "ankle", "heel", "toe", "finger", "joint", "muscle", "bone", "rib", "rib cage", "spine", "jaw",
    "tooth", "teeth", "gum", "ear", "eye", "throat", "nose", "sinus", "skin", "breast", "nipple",
    "groin", "pelvis", "testicle", "scrotum", "penis", "vagina", "bladder", "kidney", "liver",
    "bowel", "rectum", "anus", "heart", "lung", "swallowing", "breathing", "urinating", "urination",
    "bowel movement", "vision", "eyesight", "hearing", "memory", "sleeping",
]
SYMPTOMS_EN = [
    "pain", "ache", "aches", "swelling", "lump", "rash", "bleeding", "discharge", "numbness", "tightness",
    "tingling", "cramps", "cramping", "spasm", "discomfort", "tenderness", "soreness", "itching",
    "weakness", "difficulty", "difficulties", "damage", "injury", "injuries", "infection",
]
SYMPTOMS_AFTER_EN = ["problems", "problem", "trouble", "surgery"]
BODY_FR = [
    "tête", "cou", "dos", "bas du dos", "poitrine", "thorax", "ventre", "estomac", "abdomen", "jambe",
    "genou", "hanche", "épaule", "coude", "poignet", "pied", "cheville", "talon", "orteil", "doigt",
    "articulation", "muscle", "côtes", "colonne", "mâchoire", "gencive", "oreille", "œil", "yeux",
    "gorge", "nez", "sinus", "peau", "sein", "mamelon", "aine", "testicule", "vessie", "foie",
    "intestin", "cœur", "poumon", "déglutition", "respiration", "mémoire", "vision",
]
SYMPTOMS_FR = [
    "douleur", "douleurs", "mal", "maux", "enflure", "gonflement", "bosse", "éruption", "saignement", "oppression",
    "serrement",
    "saignements", "écoulement", "engourdissement", "fourmillements", "crampe", "crampes",
    "problème", "problèmes", "raideur", "faiblesse", "démangeaisons", "brûlure", "difficulté",
    "difficultés", "troubles", "blessure", "lésion",
]
# What links a symptom to the part of the body after it: "pain in my leg", "douleur au genou".
SYMPTOM_LINKS = [
    "in", "on", "of", "at", "around", "under", "behind", "near", "to", "with", "when", "while",
    "au", "aux", "a", "de", "du", "des", "d'", "dans", "sur", "sous", "derriere", "pres", "lors",
]

# The vocabulary of everyday care that clinic staff write to patients: follow-up of wounds,
# allergies, sleep, pregnancy, addiction and mental health services, and the abbreviations of
# prescriptions. Each is clinical on its own in a clinic's message to one patient.
CARE_MEDICATIONS_EN = [
    "antihistamine", "abx", "amox", "amoxi", "auto injector", "nicotine gum", "nicotine lozenge",
    "rhogam", "winrho", "rh shot", "rh immune globulin", "diclectin", "iron infusion",
]
CARE_CONDITIONS_EN = [
    "apnea", "apnoea", "anxiety", "mono", "h pylori", "h. pylori", "helicobacter", "reflux",
    "carpal tunnel", "speech delay", "language delay", "hives", "lice", "head lice", "pinworms",
    "gastro", "wound", "wounds", "abscess", "shortness of breath", "short of breath",
    "dizzy spells", "fainting", "blackouts", "cravings", "sober", "sobriety", "relapsed",
    "suicidal thoughts", "dark thoughts", "self harm", "heavy periods", "irregular periods",
    "painful periods", "hot flashes", "snoring", "daytime sleepiness", "miscarried",
    "morning sickness", "allergic", "anaphylactic", "burnout", "abstain from sex", "no sex",
    "sexual intercourse", "intercourse", "obsessive compulsive", "breast disease", "pus",
]
CARE_TESTS_EN = [
    "sleep study", "sleep test", "home sleep test", "overnight oximetry", "oximetry",
    "polysomnography", "titration night", "hearing test", "audiogram", "skin prick",
    "prick test", "patch test", "scratch test", "food challenge", "oral challenge",
    "allergy panel", "beta hcg", "bhcg", "hcg", "quantitative hcg", "dating scan",
    "dating ultrasound", "anatomy scan", "anatomy ultrasound", "nuchal translucency", "nt scan",
    "harmony test", "nipt", "glucose challenge", "group b strep", "gbs swab", "growth scan",
    "transvaginal", "breath test", "culture and sensitivity", "urine screen", "drug screen",
    "tox screen", "bone scan", "camera test", "phq 9", "gad 7", "epworth", "skin check",
    "sodium", "potassium", "magnesium", "calcium level", "egfr", "hemo",
]
CARE_PROCEDURES_EN = [
    "incision", "stitches", "sutures", "steri strips", "steristrips", "wound packing",
    "surgical site", "skin graft", "cpap", "bipap", "immunotherapy", "desensitization",
    "desensitisation", "npo", "nil by mouth", "pre admission", "pre op", "preop", "pre operative",
    "day surgery", "anesthetist", "anaesthetist", "anesthesiologist", "folic acid",
    "embryo", "intrauterine insemination", "egg freezing", "cbt i", "withdrawal management",
    "harm reduction", "opioid agonist treatment", "residential treatment", "safety plan",
]
CARE_SPECIALTIES_EN = [
    "allergist", "allergy clinic", "audiologist", "audiology", "bariatric", "lipid clinic",
    "pulmonary rehab", "cardiac rehab", "counsellor", "counselor", "counselling", "counseling",
    "crisis team", "mobile crisis", "distress centre", "distress center", "distress line",
    "kids help phone", "alcoholics anonymous", "narcotics anonymous", "AA", "NA meeting",
    "wound clinic", "speech therapist", "speech language pathologist", "psychoeducator",
    "addictions counsellor", "treatment centre", "treatment center", "early pregnancy",
    "maternity ward", "ob appointment", "prenatal visit", "prenatal class", "orthopedic",
    "orthopaedic", "orthopedics", "orthopaedics", "orthopedic surgeon", "sports medicine",
]
CARE_MEDICATIONS_FR = [
    "antihistaminique", "antibio", "antibios", "ATB", "vaporisateur nasal", "timbre de nicotine",
    "timbres de nicotine", "gomme de nicotine", "auto injecteur", "stylo d'insuline",
]
CARE_CONDITIONS_FR = [
    "apnée", "anxiété", "anxieux", "anxieuse", "mono", "reflux", "tunnel carpien",
    "retard de langage", "urticaire", "poux", "oxyures", "gastro", "plaie", "plaies", "abcès",
    "essoufflement", "essoufflé", "essoufflée", "étourdissements", "perte de conscience",
    "pertes de conscience", "évanouissement", "idées noires", "idées suicidaires",
    "règles abondantes", "règles douloureuses", "bouffées de chaleur", "ronflement",
    "somnolence", "nausées de grossesse", "allergique", "anaphylactique", "épuisement professionnel",
    "dépendance", "dépendances", "brûlure d'estomac", "brûlures d'estomac", "sarm",
    "relations sexuelles", "rapports sexuels", "troubles obsessionnels", "trouble obsessionnel",
    "maladie du sein", "maladies du sein",
]
CARE_TESTS_FR = [
    "étude du sommeil", "test du sommeil", "test de sommeil", "oxymétrie", "polysomnographie",
    "nuit de titrage", "test d'audition", "audiogramme", "tests cutanés", "test cutané",
    "test épicutané", "prick test", "test de provocation", "bêta hcg", "hcg",
    "écho de datation", "échographie de datation", "écho morphologique",
    "échographie morphologique", "clarté nucale", "écho de croissance", "écho endovaginale",
    "échographie endovaginale", "dépistage prénatal", "test de tolérance au glucose",
    "streptocoque b", "test respiratoire", "dépistage urinaire", "culture de gorge",
    "prélèvement de gorge", "prélèvement vaginal", "sodium", "potassium", "magnésium", "dfge",
    "dfg", "hémo",
]
CARE_PROCEDURES_FR = [
    "incision", "points de suture", "sutures", "agrafes", "steri strips", "site opératoire",
    "greffe de peau", "PPC", "cpap", "immunothérapie", "désensibilisation", "préadmission",
    "préop", "préopératoire", "chirurgie d'un jour", "anesthésiste", "acide folique",
    "transfert d'embryon", "embryon", "TCC", "thérapie cognitivo comportementale",
    "désintox", "sevrage", "réduction des méfaits", "traitement par agonistes opioïdes",
    "thérapie fermée", "plan de sécurité", "soins de plaies",
]
CARE_SPECIALTIES_FR = [
    "allergologue", "allergiste", "clinique d'allergie", "audiologie", "audiologiste",
    "bariatrique", "clinique des lipides", "réadaptation pulmonaire", "réadaptation cardiaque",
    "intervenant en dépendance", "intervenante en dépendance", "équipe de crise",
    "équipe mobile de crise", "ligne de crise", "info social", "jeunesse j'écoute",
    "alcooliques anonymes", "clinique de plaies", "orthophoniste", "psychoéducatrice",
    "psychoéducateur", "psy", "CRDI", "CRD", "centre de thérapie", "clinique de dépendance",
    "maison de naissance", "grossesse précoce", "suivi de grossesse", "sexologue", "orthopédiste",
    "orthopédie", "prothèse", "prothèses", "médecine du sport",
]

# More of the words of care, from general clinical knowledge (findings, injuries, devices,
# pregnancy, development, recovery), each clinical in a clinic's message to one patient.
MORE_CARE_EN = [
    ("condition", [
        "inflammation", "inflamed", "fibroid", "fibroids", "kidney stone", "kidney stones",
        "sprain", "sprained", "strained", "torn ligament", "ligament", "tendon", "sciatica",
        "herniated disc", "bulging disc", "bruising", "heart murmur", "murmur", "irregular heartbeat",
        "lymph node", "lymph nodes", "swollen gland", "swollen glands", "polyps", "growths",
        "pressure sore", "bedsore", "scab", "cold sore", "pink eye",
        "pinkeye", "ear infection", "sinus infection", "chest infection", "viral infection",
        "bacterial infection", "virus", "viral", "bacterial", "fungal", "stress leave",
        "developmental delay", "speech therapy", "occupational therapy", "growth chart",
        "breastfeeding", "lactation", "birth plan", "expecting a baby", "weight gain",
        "weight loss", "high blood pressure", "blood pressure reading", "bp reading",
        "blood sugar", "sugar levels", "iron levels", "hormone levels", "eye pressure",
        "relapse", "recovery program", "treatment program", "rehab", "rehabilitation",
        "overdose", "safer sex", "partner notification", "sexually active",
    ]),
]
MORE_CARE_FR = [
    ("condition", [
        "inflammation", "enflammé", "enflammée", "fibrome", "fibromes", "calcul rénal",
        "calculs rénaux", "pierre au rein", "pierres aux reins", "entorse", "foulure", "ligament",
        "tendon", "sciatique", "hernie discale", "ecchymose", "ecchymoses", "souffle au cœur",
        "pression artérielle", "tension artérielle", "ganglion", "ganglions", "ganglion enflé",
        "polypes", "plaie de pression", "escarre", "croûte", "feu sauvage",
        "conjonctivite", "otite", "sinusite", "infection virale", "infection bactérienne", "virus",
        "viral", "virale", "bactérien", "bactérienne", "fongique", "retard de développement",
        "orthophonie", "ergothérapie", "courbe de croissance", "date prévue d'accouchement",
        "allaitement", "plan de naissance", "prise de poids", "perte de poids", "pression haute",
        "glycémie", "taux de sucre", "taux de fer", "taux d'hormones", "pression dans l'œil",
        "rechute", "programme de traitement", "réadaptation", "surdose", "rapports protégés",
        "notification des partenaires", "sexuellement actif", "sexuellement active",
        "arrêt de travail pour épuisement",
    ]),
]

# The English and Quebec French forms of one idea, where only one language had it, and the short
# forms staff write (« dermato », « écho », "mammo", "Pap"), from a term-by-term pass over the lists
# above in both directions. Each is clinical on its own in a clinic's message to one patient.
PARITY_EN = [
    ("medication", [
        "malaria pills", "antimalarial", "antimalarials", "plan b", "depo shot", "depo injection", "anti inflammatory", "anti inflammatories",
        "muscle relaxant", "muscle relaxants", "corticosteroid", "prenatal vitamin", "prenatal vitamins",
        "anti anxiety", "nicotine inhaler",
        # drug classes written apart or missing: a class names a treatment as a drug's name does
        "betablocker", "betablockers", "anti depressant", "anti coagulant", "anticonvulsant",
        "ace inhibitor", "antihypertensive", "anxiolytic", "calcium channel blocker",
    ]),
    ("test", [
        "calcium", "albumin", "bilirubin", "troponin", "d dimer", "cortisol", "lipase", "b12",
        "vitamin b12", "pap", "mammo", "echo", "lumbar puncture", "spinal tap", "ambulatory blood pressure", "eeg",
        "breathing test", "eye pressure test",
    ]),
    ("procedure", [
        "liquid nitrogen", "cauterization", "cauterisation", "cortisone shot", "cortisone injection",
        "steroid injection", "oral appliance", "joint injection", "ostomy", "stoma", "ostomy bag",
        "colon prep",
    ]),
    ("specialty", [
        "ophthalmologist", "ophthalmology", "eye specialist", "retina specialist", "ENT",
        "ear nose and throat", "geriatrician", "geriatrics", "geriatric clinic", "physiatrist",
        "neurosurgeon", "neurosurgery", "child psychiatrist", "pathologist", "radiologist", "infectious disease specialist",
        "tel aide", "peer support worker", "teen clinic", "youth clinic", "youth health clinic",
    ]),
    ("condition", [
        "fungus", "athlete's foot", "plantar wart", "plantar warts", "burn out", "cold sores",
        "irregular periods", "speech delay", "malaria", "continence", "hearing voices", "hear voices", "low mood", "low days",
        "atypical cells", "unusual cells", "discharge summary",
    ]),
]
PARITY_FR = [
    ("medication", [
        "antipaludique", "antipaludiques", "pilule anticonceptionnelle", "pilules anticonceptionnelles", "anovulant", "anovulants",
        "contraceptif oral", "contraceptifs oraux", "timbre contraceptif", "anneau vaginal",
        "anti inflammatoire", "anti inflammatoires", "analgésique", "analgésiques", "antidouleur",
        "bêtabloquant", "bêtabloquants", "relaxant musculaire", "relaxants musculaires",
        "éclaircir le sang", "éclaircissant", "vitamine prénatale", "vitamines prénatales",
        "inhalateur de nicotine",
        # « bêta-bloquant » folds to two words; the classes below had no entry
        "bêta bloquant", "bêta bloqueur", "anti coagulant", "anti dépresseur", "anticonvulsivant",
        "antiépileptique", "neuroleptique", "antihypertenseur", "antalgique", "IECA", "ISRS",
    ]),
    ("test", [
        "albumine", "bilirubine", "troponine", "d dimères", "vitamine b12", "hémoglobine", "ferritine",
        "bilan de fer", "bilan hépatique", "bilan rénal", "test de selles",
        "analyse de selles", "analyses de selles", "échantillon de selles", "culture de selles",
        "recherche de sang dans les selles", "test de gorge", "test de sucre", "écho",
        "résonance magnétique", "densitométrie", "test d'effort", "MAPA", "ponction lombaire",
        "test de souffle", "mammo", "électroencéphalogramme",
    ]),
    ("procedure", [
        "azote liquide", "cautérisation", "infiltration de cortisone",
        "changement de pansement", "changements de pansement", "orthèse d'avancement mandibulaire",
        "orthèse buccale", "stomie", "sac de stomie", "préparation pour le côlon",
    ]),
    ("specialty", [
        "ophtalmologiste", "ophtalmologue", "ophtalmologie", "ophtalmo", "ORL", "oto rhino laryngologiste",
        "otorhinolaryngologie", "dermato", "gynéco", "rhumato", "onco", "neuro", "pédopsychiatre",
        "pédopsychiatrie", "gériatre", "gériatrie", "physiatre", "hépatologue", "infectiologue",
        "neurochirurgien", "neurochirurgienne", "neurochirurgie", "pathologiste", "radiologiste", "radiologue", "narcotiques anonymes",
        "clinique de la ménopause", "pair aidant", "paire aidante", "pairs aidants", "clinique jeunesse",
    ]),
    ("condition", [
        "paludisme", "malaria", "continence", "sobre", "sobriété", "envies de consommer", "retard de la parole", "retard de langage",
        "règles irrégulières", "mycose", "gale", "pied d'athlète", "verrue plantaire",
        "verrues plantaires", "burn out", "selles", "ronflements", "feux sauvages", "entendre des voix",
        "entend des voix", "entendez des voix", "entendent des voix", "humeur basse", "moral bas",
        "cellules atypiques", "cellules inhabituelles", "résumé de sortie", "résumé d'hospitalisation",
    ]),
]

# The fourth round: services whose name says what they treat, and the things of a treatment that
# say which treatment it is (a glucose meter, a wig for chemotherapy), each
# clinical in a clinic's message to one patient. A sentence about a staff member, a charity or
# everyone is left out by subject.py, not here.
SERVICES_EN = [
    ("specialty", [
        "employee assistance program", "employee and family assistance program", "EAP", "EFAP",
        "gender identity clinic", "gender affirming care", "gender-affirming care", "memory and aging clinic",
        "cognition clinic", "genetic counselor", "genetic counselling", "genetic counseling", "audiology",
        "audiologist", "grief counselling", "grief counseling", "grief group",
        "grief support", "bereavement", "youth crisis", "home care nurse", "home care services",
        # fifth round: rehabilitation named by what it treats
        "pelvic floor physio", "pelvic floor physiotherapy", "pelvic floor therapy", "pelvic floor rehab",
        "pelvic health physio", "vestibular rehab", "vestibular therapy", "vestibular physio", "varicose vein clinic",
    ]),
    ("procedure", [
        "radiation", "radiation therapy", "radiation treatment", "radiation treatments", "radiation planning",
        "radiation oncology", "iron infusion", "hair loss", "hair thinning", "wig", "wigs", "spleen removed",
        "spleen was removed", "removed your spleen", "root canal", "root canals", "dental implant",
    ]),
    ("test", ["sweat test", "sweat chloride test"]),
    ("condition", ["night sweats", "cavity", "cavities"]),
    ("medication", [
        "glucose meter", "glucose meters", "glucometer",
        "test strips", "lancets", "glucose sensor", "Libre sensor", "CGM", "oxygen tank", "oxygen tanks",
        "oxygen concentrator", "home oxygen", "compression stockings", "compression socks", "orthotics",
        "knee brace", "back brace", "wrist brace", "shower chair", "raised toilet seat", "nebulizer", "nebuliser",
        "respiratory therapist", "syringes", "clean needles", "sharps container",
    ]),
]
SERVICES_FR = [
    ("specialty", [
        "programme d'aide aux employés", "programme d'aide aux employés et à la famille", "PAE", "PAEF",
        "clinique d'identité de genre", "soins d'affirmation de genre", "clinique de cognition",
        "conseillère en génétique", "conseiller en génétique", "conseil génétique", "audiologie", "audiologiste",
        "groupe de deuil", "soutien au deuil", "suivi de deuil",
        "crise jeunesse", "soutien à domicile", "soins à domicile",
        "rééducation périnéale", "physio périnéale", "physiothérapie périnéale", "plancher pelvien",
        "réadaptation vestibulaire", "physiothérapie vestibulaire", "physio vestibulaire", "clinique de varices",
    ]),
    ("procedure", [
        "radiation", "radiations", "traitements de radiation", "planification de la radiothérapie", "perfusion de fer",
        "perte de cheveux", "perruque", "perruques", "prothèse capillaire", "enlevé la rate", "retiré la rate",
        "ablation de la rate", "traitement de canal", "implant dentaire", "plombage", "plombages",
    ]),
    ("test", ["test de la sueur", "test à la sueur", "test de sueur"]),
    ("condition", ["sueurs nocturnes", "sueurs la nuit", "commotion", "carie", "caries", "né prématuré",
                   "née prématurée", "nés prématurés", "nées prématurées", "bébé prématuré", "prématurité"]),
    ("medication", [
        "bandelettes",
        "lecteur de glycémie", "capteur de glycémie", "capteur Libre", "bonbonne d'oxygène", "bonbonnes d'oxygène",
        "concentrateur d'oxygène", "oxygène à domicile", "bas de compression", "bas support", "orthèse", "orthèses",
        "chaise de douche", "siège de toilette surélevé", "nébuliseur", "inhalothérapeute", "seringues",
        "seringues neuves", "contenant pour seringues",
    ]),
]

# The sixth round: the kinds the third blind part missed most (mental health and substance use said
# as services, steps and counts; pregnancy and fertility care; allergy testing and treatment; brand
# names the drug dictionary lacks), from clinical knowledge, English and Quebec French idea by idea.
# Each is clinical in a clinic's message to one patient; a colleague's or everyone's is left out by
# subject.py. Left out as too often administrative: "due date" (a bill's), "withdrawal" (a bank's),
# "sponsor" / « parrain » (a charity's), « trimestre » (a quarter), "grief" and « deuil » alone.
# Brand names the drug dictionary lacks, the same in both languages.
_SIXTH_BRANDS = [
    "Blexten", "Allerject", "Emerade", "Metadol", "Habitrol", "Gonal-f", "Menopur", "Ovidrel", "Cetrotide",
    "Orgalutran", "Tri-Cyclen", "Jaydess", "Visanne", "Gravol", "Restoralax", "Tactupump", "Dexcom",
    "Omnipod", "Freestyle Libre",
]
SIXTH_EN = [
    ("condition", [
        "DBT", "EMDR", "gambling help line", "intrusive thoughts", "mood clinic", "early psychosis", "early psychosis program", "psychoeducation",
        "anger management", "trauma therapy", "trauma counselling", "trauma counseling", "couples therapy",
        "couples counselling", "mental health worker", "mental health nurse", "psychiatric nurse",
        "psychiatric assessment", "psych assessment", "ADHD assessment", "autism assessment", "days sober",
        "AA meeting", "AA meetings", "NA meeting", "twelve step", "12 step program", "detox unit", "detox bed",
        "withdrawal symptoms", "withdrawal management", "opioid agonist therapy", "opioid agonist treatment",
        "methadone carry", "methadone carries", "urine drug screen", "urine drug test", "safe supply",
        "supervised consumption", "safe injection site", "supervised injection site", "fentanyl test strips",
        "fentanyl strips", "drug checking", "smoking cessation", "quit smoking program", "problem gambling",
        "gambling problem", "gambling help", "drinks a day", "drinks a week", "drinks per day", "drinks per week",
        "without a drink", "baby blues", "perinatal mental health", "sleeping pills", "crisis worker",
        "fertility treatment", "fertility treatments", "fetal movement", "fetal movements", "baby's movements",
        "baby's heartbeat", "kick count", "kick counts", "weeks pregnant", "membrane sweep", "stretch and sweep",
        "pelvic rest", "breast pump", "positive pregnancy test", "sperm donor", "ovulation", "ovulation test",
        "ovulation kit", "hay fever", "dust mite", "penicillin allergy", "sulfa allergy", "latex allergy",
        "lactation consultant", "doula", "perinatal team", "perinatal clinic", "perinatal program",
        "post natal", "needle exchange", "needle exchange program", "Nar-Anon", "Al-Anon", "Alateen",
        "Gamblers Anonymous", "Overeaters Anonymous", "Cocaine Anonymous", "Portage", "no spleen",
        "without a spleen", "IgE", "nightmares", "night terrors", "flashbacks", "pessary", "stims",
        "Aire ouverte", "Youth Wellness Hub", "Foundry", "psych nurse", "coping skills", "racing thoughts", "ruminating",
        "Kids Help Phone", "drinks a night", "egg ladder", "baked egg",
        # programmes and lines a patient is sent to for mood, anxiety or substance use
        "BounceBack", "Wellness Together Canada", "Hope for Wellness", "Good2Talk", "ConnexOntario", "MindShift",
    ]),
    ("test", [
        "glucose tolerance test", "glucose challenge test", "skin prick test", "skin prick testing",
        "oral food challenge", "drug challenge", "GBS swab", "nuchal scan", "NT scan", "early pregnancy scan",
        "viability scan", "follicle scan", "follicle tracking", "day 3 bloodwork", "day 21 progesterone",
        "AMH",
    ]),
    ("procedure", [
        "allergy injection", "allergy injections", "allergy shot", "sitz bath", "sitz baths",
        "incentive spirometer", "breathing exerciser", "frozen embryo transfer", "egg freezing",
    ]),
    ("medication", [*_SIXTH_BRANDS, "nicotine patch", "nicotine patches"]),
]
SIXTH_FR = [
    ("condition", [
        "DBT", "EMDR", "Jeu : aide et référence", "crise de panique", "crises de panique", "attaque de panique", "attaques de panique", "pensées intrusives",
        "trouble de l'humeur", "troubles de l'humeur", "premier épisode psychotique", "épisode psychotique",
        "intervenant de crise", "intervenante de crise", "évaluation du TDAH", "évaluation en autisme",
        "évaluation pour l'autisme", "gestion de la colère", "thérapie de couple", "suivi psychosocial",
        "intervenante psychosociale", "intervenant psychosocial", "guichet d'accès en santé mentale",
        "guichet d'accès santé mentale", "GASMA", "jours sans boire", "réunion des AA",
        "réunions des AA", "symptômes de sevrage", "traitement par agonistes opioïdes", "TAO",
        "dépistage de drogues", "dépistage urinaire", "approvisionnement sécuritaire",
        "site de consommation supervisée", "bandelettes de détection du fentanyl", "bandelettes de fentanyl",
        "vérification de drogues", "arrêt tabagique", "cessation tabagique", "jeu compulsif", "jeu pathologique",
        "consommations par jour", "consommations par semaine", "somnifères", "dépression post-partum",
        "santé mentale périnatale", "traitement de fertilité", "traitements de fertilité", "mouvements du bébé",
        "mouvements fœtaux", "cœur du bébé", "semaines de grossesse", "décollement des membranes",
        "repos pelvien", "tire-lait", "test de grossesse positif", "donneur de sperme", "ovulation",
        "test d'ovulation", "rhume des foins", "acariens", "allergie à la pénicilline", "allergie aux sulfas",
        "allergie au latex", "consultante en lactation", "doula", "troubles alimentaires", "trouble alimentaire",
        "équipe de périnatalité", "équipe périnatale", "post natal", "post natale", "postnatale",
        "échange de seringues", "Nar-Anon", "Al-Anon", "Alateen", "Gamblers anonymes", "Joueurs anonymes",
        "Outremangeurs anonymes", "Cocaïnomanes anonymes", "Portage", "Louis-H. Lafontaine", "Louis-H.-Lafontaine",
        "Institut universitaire en santé mentale", "Dollard-Cormier", "Domrémy", "Maison Jean Lapointe",
        "plus de rate", "pas de rate", "IgE", "rage de consommer", "rages de consommer", "cauchemars",
        "terreurs nocturnes", "pessaire", "stimulation ovarienne", "Aire ouverte", "soins rénaux", "habiletés d'adaptation", "GASM", "idées qui tournent en boucle",
        "pensées qui tournent en boucle", "ruminations", "pédopsy", "Tel-Jeunes", "verres par soir", "verres par jour",
        "verres par semaine", "échelle de l'œuf",
        "Retrouver son entrain", "Alcochoix", "Espace mieux-être Canada", "Tel-Écoute", "Écoute Entraide",
        "Drogue : aide et référence", "Spectre de rue", "Pavillon Foster",
    ]),
    ("test", [
        "test de tolérance au glucose", "HGOT", "tests cutanés", "test de provocation orale",
        "test de provocation", "test prénatal non invasif", "TPNI", "prélèvement pour le streptocoque",
        "clarté nucale", "écho de viabilité", "échographie de viabilité", "suivi folliculaire", "AMH",
    ]),
    ("procedure", [
        "injection d'allergie", "injections d'allergie", "injections de désensibilisation", "bain de siège",
        "bains de siège", "exerciseur respiratoire", "spiromètre incitatif", "ponction d'ovules",
        "ponction ovarienne", "transfert d'embryon", "transfert d'embryons", "congélation d'ovules", "IIU",
    ]),
    ("medication", [*_SIXTH_BRANDS, "timbre de nicotine", "timbres de nicotine"]),
]

# Seventh round: the gentle forms of pregnancy and mental-health care that a probe of the developer's own
# found unlisted (a birthing centre, a group or a worker "for you" are in phrasing.py).
SEVENTH_EN = [
    ("condition", [
        "birthing centre", "birthing center", "birth centre", "birth center", "birthing unit", "birthing suite",
        "labour and delivery", "labor and delivery", "dating scan", "dating ultrasound", "anatomy scan",
        "morphology scan", "prenatal record", "pregnancy record", "antenatal record", "postpartum check",
        "postpartum visit", "six week check", "6 week postpartum", "baby blues", "peer support worker",
        "mental health worker", "crisis plan", "wellness recovery action plan", "early intervention team",
        "early psychosis intervention", "early psychosis program", "early intervention in psychosis",
    ]),
]
SEVENTH_FR = [
    ("condition", [
        "centre de naissance", "salle d'accouchement", "bloc obstétrical", "écho de datation",
        "échographie de datation", "écho morphologique", "échographie morphologique", "carnet de grossesse",
        "dossier de grossesse", "visite post-partum", "suivi post-partum", "suivi postnatal", "baby blues",
        "pair aidant", "paire aidante", "intervenant de suivi", "intervenante de suivi", "plan de crise",
        "équipe d'intervention précoce", "intervention précoce en psychose", "programme d'intervention précoce",
        "mauvaises pensées", "pensées sombres", "pensées noires",
        "suivi d'intensité variable", "suivi intensif dans le milieu",
    ]),
]

# Eighth round: the services and professionals of care that dev-13 named and no list had (a back school,
# an embryologist, an ostomy nurse, a hearing-aid fitter), and the short forms staff write.
EIGHTH_EN = [
    ("condition", [
        "back school", "embryologist", "embryology lab", "ostomy nurse", "wound ostomy nurse", "ostomy appliance",
        "audiologist", "hearing aid fitting", "stress management group",
        "stress management workshop", "semen analysis", "sperm count",
    ]),
]
EIGHTH_FR = [
    ("condition", [
        "école du dos", "embryologiste", "laboratoire d'embryologie", "stomothérapeute", "stomothérapie",
        "infirmière en stomothérapie", "audioprothésiste", "audiologiste", "endocrino", "atelier gérer son stress",
        "gestion du stress", "analyse de sperme",
    ]),
]

# Ninth round: the equipment of care at home that says what the patient lives with (a patient lift, a
# transfer board, adapted utensils, an oxygen concentrator said alone); "walker", "cane" and "wheelchair"
# stay out (an accessible entrance, a name), they are words of the score's class of aids (wordclasses.py).
NINTH_EN = [
    ("medication", [
        "patient lift", "hoyer lift", "mechanical lift", "ceiling lift", "transfer board", "sliding board",
        "bath bench", "tub transfer bench", "transfer bench", "adaptive utensils", "adapted utensils",
        "built-up utensils", "bedside commode", "commode chair", "concentrator", "port flush",
    ]),
]
NINTH_FR = [
    ("medication", [
        "lève-personne", "lève-personnes", "planche de transfert", "banc de bain", "banc de transfert",
        "ustensiles adaptés", "chaise d'aisance", "concentrateur", "concentrateur d'oxygène",
    ]),
]

# Tenth round: what dev-17 to dev-19 named and no list had: a hearing aid's batteries, the contraceptive shot
# by its short name, keratoconus in French, a travel vaccine course.
TENTH_EN = [
    ("medication", ["depo", "rabies series"]),
]
TENTH_FR = [
    ("medication", ["piles pour vos appareils", "dépo", "série contre la rage",
                    "vaccins contre la rage"]),
    ("condition", ["kératocône"]),
]
# Eleventh round: what dev-20 and dev-21 named and no list had; hearing aids, which the writers of the
# newer parts label clinical wherever they are named (a bill, a pickup, a fitting) — an early
# development part's "bring your glasses and hearing aids" (administrative there) is now blocked.
ELEVENTH_EN = [
    ("condition", ["as a survivor", "as a cancer survivor", "gradual return to work", "hormone follow up"]),
    ("medication", ["hearing aid"]),
]
ELEVENTH_FR = [
    ("condition", ["comme survivante", "comme survivant", "en tant que survivante", "en tant que survivant",
                   "retour progressif", "suivi hormonal", "épuisement professionnel"]),
    ("medication", ["capteur de glucose", "capteurs de glucose", "appareils auditifs",
                    "appareil auditif", "prothèses auditives"]),
]

CLINICAL_EN = Lexicon.of(
    "core-en",
    ("medication", MEDICATIONS_EN),
    ("condition", CONDITIONS_EN),
    ("test", TESTS_EN),
    ("procedure", PROCEDURES_EN),
    ("specialty", SPECIALTIES_EN),
    ("test_generic", TESTS_GENERIC_EN),
    ("result", RESULTS_EN),
    ("result_weak", RESULTS_WEAK_EN),
    ("condition", GENERAL_EN),
    ("body", BODY_EN),
    ("symptom", SYMPTOMS_EN),
    ("symptom_after", SYMPTOMS_AFTER_EN),
    ("medication", CARE_MEDICATIONS_EN),
    ("condition", CARE_CONDITIONS_EN),
    ("test", CARE_TESTS_EN),
    ("procedure", CARE_PROCEDURES_EN),
    ("specialty", CARE_SPECIALTIES_EN),
    *MORE_CARE_EN,
    *PARITY_EN,
    *SERVICES_EN,
    *SIXTH_EN,
    *SEVENTH_EN,
    *EIGHTH_EN,
    *NINTH_EN,
    *TENTH_EN,
    *ELEVENTH_EN,
)

CLINICAL_FR = Lexicon.of(
    "core-fr",
    ("medication", MEDICATIONS_FR),
    ("condition", CONDITIONS_FR),
    ("test", TESTS_FR),
    ("procedure", PROCEDURES_FR),
    ("specialty", SPECIALTIES_FR),
    ("test_generic", TESTS_GENERIC_FR),
    ("result", RESULTS_FR),
    ("result_weak", RESULTS_WEAK_FR),
    ("condition", GENERAL_FR),
    ("body", BODY_FR),
    ("symptom", SYMPTOMS_FR),
    ("medication", CARE_MEDICATIONS_FR),
    ("condition", CARE_CONDITIONS_FR),
    ("test", CARE_TESTS_FR),
    ("procedure", CARE_PROCEDURES_FR),
    ("specialty", CARE_SPECIALTIES_FR),
    *MORE_CARE_FR,
    *PARITY_FR,
    *SERVICES_FR,
    *SIXTH_FR,
    *SEVENTH_FR,
    *EIGHTH_FR,
    *NINTH_FR,
    *TENTH_FR,
    *ELEVENTH_FR,
)

PROMOTIONAL = Lexicon.of(
    "promotional",
    ("promotional", [
        "special offer", "limited time offer", "limited time", "exclusive offer",
        "discount", "discounted", "promo", "promo code", "promotion", "promotional",
        "coupon", "on sale", "sale ends", "big sale", "flash sale", "book now and save",
        "save up to", "save big", "buy one get one", "bogo", "free consultation", "free gift",
        "free trial", "newsletter", "subscribe to our", "happy birthday",
        "refer a friend",
        "giveaway", "contest", "win a", "act now", "don't miss out", "dont miss out",
        "great deal", "best price", "lowest price", "percent off",
        # French
        "offre spéciale", "offre exclusive", "offre limitée", "rabais", "soldes",
        "en solde", "promotion", "code promo", "aubaine", "infolettre", "abonnez vous",
        "bonne fête", "joyeux anniversaire",
        "consultation gratuite", "cadeau gratuit", "concours", "parrainez",
        "meilleur prix", "réservez maintenant et économisez", "économisez",
    ]),
)

PROHIBITED = Lexicon.of(
    "prohibited",
    ("cannabis", [
        "cannabis", "marijuana", "marihuana", "weed", "cbd", "THC", "edibles",
        "pre roll", "pre rolls",
    ]),
    ("alcohol", [
        "beer", "beers", "wine", "wines", "liquor", "vodka", "whisky", "whiskey",
        "tequila", "cocktail", "happy hour", "brewery", "winery", "bière", "vin",
        "spiritueux", "cidre",
    ]),
    ("firearms", [
        "firearm", "firearms", "gun", "guns", "rifle", "shotgun", "handgun", "ammunition",
        "ammo", "arme à feu", "armes à feu", "munitions",
    ]),
    ("tobacco", [
        "tobacco", "cigarette", "cigarettes", "cigar", "cigars", "vape", "vapes", "vaping",
        "e cigarette", "juul", "tabac", "vapoteuse", "vapotage", "cigarette électronique",
    ]),
    ("debt", [
        "debt collection", "debt collector", "collection agency", "collections agency",
        "sent to collections",
        "agence de recouvrement", "recouvrement",
    ]),
    ("drug promotion", [
        "lose weight fast", "weight loss injection", "weight loss injections",
        "weight loss program", "weight loss drug", "diet pills", "fat burner",
        "buy viagra", "cheap meds", "online pharmacy", "no prescription needed",
        "ask your doctor about", "perte de poids rapide",
        "injections amaigrissantes", "pilules amaigrissantes",
        "demandez à votre médecin",
    ]),
)

# Terms that the packaged sources (sources.py) would add but that are ordinary words, names or
# abbreviations in messages, although rare in running text. Authoritative like the lists above:
# a term here is never clinical by way of a packaged lexicon (the project's own lists may still
# name it, in a form that is not ambiguous).
NOT_CLINICAL_TERMS = [
    "odd",  # oppositional defiant disorder; "that's odd"
]

# Names and administrative phrases whose words would otherwise read as clinical: a charity or
# an institution, a tax credit, a parking permit. Never clinical, in any clinic (a clinic adds its
# own with the ``allow`` setting).
ADMINISTRATIVE_PHRASES = [
    "disability tax credit", "disability tax credit form", "accessible parking permit",
    "heart and stroke foundation", "canadian cancer society", "canadian blood services",
    "heart institute", "ottawa heart institute", "institut de cardiologie", "hema quebec",
    "credit d'impot pour personnes handicapees", "vignette de stationnement pour personne handicapee",
    "stationnement pour personne handicapee", "fondation des maladies du coeur",
    "societe canadienne du cancer", "health 811", "info sante 811", "info sante",
    # eighth round: a charge on a card is no sample
    "double prelevement", "prelevement sur votre carte", "prelevement sur votre compte",
    "prelevement bancaire", "prelevement automatique", "prelevements automatiques",
    # ninth round: every free text is scored; everyday phrases whose words are clinical elsewhere
    "hours of operation", "heures d'operation", "heures d'ouverture", "stay positive", "restez positif",
    "restez positive", "on reste positif",
    # a department named by the kind of test it does, like radiology
    "diagnostic imaging", "imagerie diagnostique",
    # "back" in a call returned is no part of the body; a missed appointment checked on is the clinic's business
    # eleventh round: the routine recalls of an eye or dental office, and idioms about the clinic's things
    "time for your eye exam", "due for your eye exam", "eye exam is due", "back to school eye exam",
    "annual eye exam", "routine eye exam", "yearly eye exam", "eye exam is covered", "examen de la vue",
    "examen de la vue de la rentree", "recall exam and x rays", "cleaning and x rays", "routine x rays",
    "nous donne mal a la tete", "donne mal a la tete a tout le monde", "giving us a headache", "gives us a headache",
    # a saint's heart names a hospital, a parish or a clinic, never the patient's
    "sacred heart", "sacre coeur",
    "diagnostic du technicien", "technician's diagnosis",
    # (an allowed phrase is not read by the score either: a joke about the coffee machine stays a joke)
    "critical condition 😂",
    "call us back", "call me back", "call you back", "call the clinic back", "call the office back",
    "get back to you", "get back to us", "we had you down for", "we had you booked for", "we were expecting you",
    "on vous attendait", "on vous a attendu", "nous vous attendions", "on t'attendait",
]

# Diseases that name a vaccine everyone is offered: next to a vaccine word ("COVID-19 vaccine",
# « rappel du tétanos », "flu shot") they name the vaccine, not the patient's condition. A vaccine
# given because of a condition is the context family "vaccine" (phrasing.py).
ROUTINE_VACCINE_DISEASES = [
    "covid", "covid 19", "coronavirus", "influenza", "flu", "tetanus", "diphtheria", "pertussis",
    "whooping cough", "measles", "mumps", "rubella", "polio", "chickenpox", "chicken pox",
    "varicella", "shingles", "pneumococcal", "pneumococcus", "pneumonia", "meningococcal", "rsv",
    "tetanos", "diphterie", "coqueluche", "rougeole", "oreillons", "rubeole", "varicelle", "zona",
    "grippe", "pneumocoque", "pneumonie", "meningocoque", "vrs",
]
VACCINE_WORDS = [
    "vaccine", "vaccines", "vaccination", "vaccinations", "shot", "shots", "booster", "boosters",
    "immunization", "immunisation", "dose", "doses", "vaccin", "vaccins", "rappel", "rappels",
    "campagne", "clinic", "clinique",
]
