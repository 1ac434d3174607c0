"""Message texts for the seed: customers and agents writing in Russian and English, varied enough for search.

A message is a greeting, one to three sentences and a sign-off. Sentences carry slots (a product, an order
number, an amount, a city), so a word's share of messages ranges from everywhere (a greeting) through about
a tenth of tickets (a topic such as a refund) to a handful (an order number, a rare product): the search
bench measures terms at each of those frequencies (bench/search.py) on text shaped like the real thing.
"""

from __future__ import annotations

import random
from collections.abc import Callable

GREETINGS = {
    "ru": ["Здравствуйте!", "Добрый день.", "Добрый вечер!", "Привет.", ""],
    "en": ["Hello,", "Hi,", "Good morning,", "Dear support,", ""],
}
SIGN_OFFS = {
    "ru": ["Спасибо.", "С уважением.", "Жду ответа.", "Заранее спасибо!", ""],
    "en": ["Thanks.", "Best regards.", "Thank you in advance.", "Looking forward to your answer.", ""],
}

# What customers write; {product}, {order}, {amount}, {city} and {day} are filled per message.
CUSTOMER_SENTENCES = {
    "ru": [
        "Заказал {product}, но до сих пор не получил посылку.",
        "Заказ {order} должен был прийти {day}, но курьер так и не приехал.",
        "Прошу оформить возврат денег за заказ {order}.",
        "Хочу вернуть {product}: он не подошёл по размеру.",
        "Деньги за возврат так и не пришли на карту.",
        "С карты дважды списали {amount} рублей.",
        "Не могу войти в личный кабинет, пароль не подходит.",
        "Приложение вылетает сразу после запуска на телефоне.",
        "{product} перестал включаться через неделю после покупки.",
        "Пришла посылка с повреждённой коробкой, внутри разбит {product}.",
        "Подскажите, когда будет доставка в {city}?",
        "Не пришёл счёт за прошлый месяц, бухгалтерия просит документы.",
        "Как поменять адрес доставки для заказа {order}?",
        "Можно ли обменять {product} на другую модель?",
        "Хотим подключить ещё двадцать сотрудников, пришлите коммерческое предложение.",
        "Синхронизация работает очень медленно, отчёты не открываются.",
        "Курьер привёз чужой заказ, мой {product} не доставлен.",
        "Гарантийный ремонт затянулся уже на месяц.",
        "Промокод не применяется при оплате.",
        "Оплата картой не проходит, банк пишет об ошибке.",
        "Вопрос так и не решён, прошу ответить как можно скорее.",
        "Спасибо за быстрый ответ, всё заработало.",
    ],
    "en": [
        "I ordered a {product} but the parcel has still not arrived.",
        "Order {order} was due on {day} but the courier never came.",
        "Please refund the payment for order {order}.",
        "I would like to return the {product}, it does not fit.",
        "The refund has still not reached my card.",
        "My card was charged twice, {amount} dollars each time.",
        "I cannot log in to my account, the password is rejected.",
        "The app crashes right after it starts on my phone.",
        "The {product} stopped turning on a week after I bought it.",
        "The parcel arrived damaged and the {product} inside is broken.",
        "When will you deliver to {city}?",
        "We have not received the invoice for last month.",
        "How do I change the delivery address for order {order}?",
        "Can I exchange the {product} for another model?",
        "We want to add twenty more seats, please send us a quote.",
        "Syncing is very slow and reports do not load.",
        "The courier delivered someone else's order, my {product} is missing.",
        "The warranty repair has taken a month already.",
        "The discount code does not apply at checkout.",
        "Card payment fails, the bank shows an error.",
        "This is still not solved, please answer as soon as possible.",
        "Thanks for the quick answer, everything works now.",
    ],
}
AGENT_SENTENCES = {
    "ru": [
        "Мы проверили ваш заказ {order}, посылка в пути.",
        "Мы оформили возврат, деньги поступят на карту в течение пяти рабочих дней.",
        "Пришлите, пожалуйста, номер заказа и снимок экрана с ошибкой.",
        "Мы передали ваш вопрос специалистам, ответим в течение дня.",
        "Новая версия приложения уже доступна, обновите его, пожалуйста.",
        "Курьер приедет {day} с десяти до шести.",
        "Счёт отправлен на вашу почту повторно.",
        "Мы заменим {product} бесплатно по гарантии.",
        "Второе списание отменено, банк вернёт {amount} рублей.",
        "Пароль сброшен, ссылка для входа отправлена на почту.",
    ],
    "en": [
        "We have checked order {order}, the parcel is on its way.",
        "We have issued a refund, the money will reach your card within five business days.",
        "Could you please send us the order number and a screenshot of the error?",
        "We have passed your question to our specialists and will answer within a day.",
        "A new version of the app is out, please update it.",
        "The courier will come on {day} between ten and six.",
        "We have sent the invoice to your email again.",
        "We will replace the {product} free of charge under warranty.",
        "The second charge is cancelled, the bank will return {amount} dollars.",
        "Your password is reset, a sign-in link is in your inbox.",
    ],
}
NOTE_SENTENCES = [
    "Проверил логи: таймаут платёжного шлюза.",
    "Клиент VIP, ответить в приоритете.",
    "Escalated to the second line, waiting for the developers.",
    "Checked the logs: payment gateway timeout.",
    "Повторное обращение, уже обещали вернуть деньги.",
]
# Picked with weights falling as 1/rank: the first few are in many messages, the last in a few hundred
# at a million tickets.
PRODUCTS = {
    "ru": [
        "смартфон",
        "ноутбук",
        "планшет",
        "роутер",
        "наушники",
        "телевизор",
        "пылесос",
        "холодильник",
        "принтер",
        "монитор",
        "фотоаппарат",
        "кофеварка",
        "микроволновка",
        "чайник",
        "утюг",
        "блендер",
        "самокат",
        "велосипед",
        "электрогриль",
        "мультиварка",
        "увлажнитель",
        "обогреватель",
        "кондиционер",
        "проектор",
        "саундбар",
        "видеорегистратор",
        "навигатор",
        "электробритва",
        "эпилятор",
        "тонометр",
        "термопот",
        "хлебопечка",
        "соковыжималка",
        "мясорубка",
        "граммофон",
        "метроном",
        "телескоп",
    ],
    "en": [
        "phone",
        "laptop",
        "tablet",
        "router",
        "headphones",
        "TV",
        "vacuum cleaner",
        "fridge",
        "printer",
        "monitor",
        "camera",
        "coffee machine",
        "microwave",
        "kettle",
        "iron",
        "blender",
        "scooter",
        "bicycle",
        "grill",
        "slow cooker",
        "humidifier",
        "heater",
        "air conditioner",
        "projector",
        "soundbar",
        "dashcam",
        "GPS unit",
        "shaver",
        "toaster",
        "blood pressure monitor",
        "bread maker",
        "juicer",
        "meat grinder",
        "gramophone",
        "metronome",
        "telescope",
        "harmonium",
    ],
}
CITIES = {
    "ru": ["Москву", "Казань", "Новосибирск", "Екатеринбург", "Самару", "Пермь", "Тверь", "Калининград"],
    "en": ["Berlin", "London", "Riga", "Warsaw", "Prague", "Vienna", "Tallinn", "Lisbon"],
}
DAYS = {
    "ru": ["в понедельник", "во вторник", "в среду", "в четверг", "в пятницу", "в субботу"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
}


def _zipf(rng: random.Random, items: list[str]) -> Callable[[], str]:
    weights = [1 / rank for rank in range(1, len(items) + 1)]

    def pick() -> str:
        return rng.choices(items, weights)[0]

    return pick


class MessageTexts:
    """Makes message texts from one random generator, so a seed is reproducible."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._product = {language: _zipf(rng, items) for language, items in PRODUCTS.items()}

    def _fill(self, sentence: str, language: str) -> str:
        rng = self.rng
        if "{" not in sentence:
            return sentence
        return sentence.format(
            product=self._product[language](),
            order=f"A-{rng.randrange(10**6):06d}",
            amount=rng.randrange(100, 100_000),
            city=rng.choice(CITIES[language]),
            day=rng.choice(DAYS[language]),
        )

    def _message(self, sentences: list[str], language: str) -> str:
        rng = self.rng
        body = [
            self._fill(sentence, language) for sentence in rng.sample(sentences, rng.choice((1, 1, 2, 3)))
        ]
        lines = [rng.choice(GREETINGS[language]), " ".join(body), rng.choice(SIGN_OFFS[language])]
        return "\n\n".join(line for line in lines if line)

    def customer(self, language: str) -> str:
        return self._message(CUSTOMER_SENTENCES[language], language)

    def agent(self, language: str) -> str:
        return self._message(AGENT_SENTENCES[language], language)

    def note(self) -> str:
        return self.rng.choice(NOTE_SENTENCES)
